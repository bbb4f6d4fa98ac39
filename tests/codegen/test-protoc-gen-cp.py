#!/usr/bin/python3
# test-protoc-gen-cp.py: the generator alone (naming rules, errors, output)
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: test-protoc-gen-cp.py PROTOC PLUGIN PROTOS_DIR

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

PROTOC, PLUGIN, PROTOS = sys.argv[1:4]
del sys.argv[1:4]


def load_plugin_module():
    loader = importlib.machinery.SourceFileLoader('protoc_gen_cp', PLUGIN)
    spec = importlib.util.spec_from_loader('protoc_gen_cp', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


cg = load_plugin_module()


def run_protoc(proto, *extra):
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [PROTOC, '--plugin=protoc-gen-cp=' + PLUGIN, '--proto_path=' + PROTOS,
             '--proto_path=/usr/include', '--cp_out=' + out, *extra, os.path.join(PROTOS, proto)],
            capture_output=True, text=True)
        files = {}
        for root, _, names in os.walk(out):
            for n in names:
                with open(os.path.join(root, n)) as f:
                    files[os.path.relpath(os.path.join(root, n), out)] = f.read()
        return proc.returncode, proc.stderr, files


class Naming(unittest.TestCase):
    def test_camel_to_snake(self):
        self.assertEqual(cg.camel_to_snake('GetRequest'), 'get_request')
        self.assertEqual(cg.camel_to_snake('HTTPRequest'), 'http_request')
        self.assertEqual(cg.camel_to_snake('Int32Value'), 'int32_value')
        self.assertEqual(cg.camel_to_snake('camelName'), 'camel_name')
        self.assertEqual(cg.camel_to_snake('snake_case_2'), 'snake_case_2')

    def test_protoc_c_names(self):
        # must match what protoc-c generates (kv.v1.GetRequest → Kv__V1__GetRequest)
        self.assertEqual(cg.pbc_full_name_to_c('kv.v1.GetRequest'), 'Kv__V1__GetRequest')
        self.assertEqual(cg.pbc_full_name_to_lower('kv.v1.GetRequest'), 'kv__v1__get_request')
        self.assertEqual(cg.pbc_full_name_to_lower('a.TestAll.MStringStringEntry'),
                         'a__test_all__mstring_string_entry')
        self.assertEqual(cg.pbc_field_name('default'), 'default_')
        self.assertEqual(cg.pbc_field_name('signal'), 'signal')

    def test_names(self):
        n = cg.Names('Kv', 'GetRequest')
        self.assertEqual((n.camel, n.snake, n.type_macro, n.module, n.obj),
                         ('KvGetRequest', 'kv_get_request', 'KV_TYPE_GET_REQUEST', 'KV', 'GET_REQUEST'))
        n = cg.Names('MyApp', 'OuterInner')
        self.assertEqual((n.camel, n.snake, n.type_macro), ('MyAppOuterInner', 'my_app_outer_inner',
                                                            'MY_APP_TYPE_OUTER_INNER'))

    def test_parameters(self):
        self.assertEqual(cg.parse_parameter('prefix=Foo,decorator=FOO_API'),
                         {'prefix': 'Foo', 'decorator': 'FOO_API'})
        self.assertEqual(cg.parse_parameter('prefix=Cp,namespace=ConnectPlugin'),
                         {'prefix': 'Cp', 'namespace': 'ConnectPlugin'})
        with self.assertRaises(cg.GeneratorError):
            cg.parse_parameter('prefix=foo')
        with self.assertRaises(cg.GeneratorError):
            cg.parse_parameter('bogus=1')


class Errors(unittest.TestCase):
    def assert_fails(self, proto, message, *extra):
        rc, stderr, files = run_protoc(proto, *extra)
        self.assertNotEqual(rc, 0, stderr)
        self.assertIn(message, stderr)
        self.assertEqual(files, {})

    def test_clash_types(self):
        self.assert_fails('errors/clash-types.proto',
                          'message clash.Foo_Bar and message clash.FooBar both map to the C '
                          'identifier "ClashFooBar"')

    def test_clash_nested(self):
        self.assert_fails('errors/clash-nested.proto', 'both map to the C identifier "ClashOuterInner"')

    def test_clash_field_accessor(self):
        self.assert_fails('errors/clash-fields.proto',
                          'field clash.Msg.get_type and message clash.Msg.Get both map to the C '
                          'identifier "clash_msg_get_get_type"')

    def test_clash_enum_values(self):
        self.assert_fails('errors/clash-enum-values.proto',
                          'both map to the C identifier "CLASH_COLOR_DARK_GREEN"')

    def test_clash_oneof(self):
        self.assert_fails('errors/clash-oneof.proto', '"clash_msg_get_choice_case"')

    def test_unsupported_well_known(self):
        self.assert_fails('errors/unsupported-wkt.proto',
                          'message type google.protobuf.Timestamp has no CpMessage class')

    def test_clash_optional_presence(self):
        self.assert_fails('errors/clash-optional.proto',
                          'field clash.Msg.has_maybe and optional field clash.Msg.maybe both map')

    def test_proto2(self):
        self.assert_fails('errors/proto2.proto', 'only proto3 files are supported')

    def test_bad_prefix(self):
        self.assert_fails('nopkg.proto', 'must be CamelCase', '--cp_opt=prefix=lower')


class Output(unittest.TestCase):
    def test_well_known_types(self):
        rc, stderr, files = run_protoc('wkt.proto')
        self.assertEqual(rc, 0, stderr)
        source = files['wkt.cp.c']
        header = files['wkt.cp.h']
        self.assertIn('CpEmpty *cgwkt_uses_wkt_get_nothing (CgwktUsesWkt *self);', header)
        self.assertIn('CpStringValue *cgwkt_uses_wkt_get_name', header)
        self.assertIn('g_param_spec_object ("nothing", NULL, NULL, CP_TYPE_EMPTY', source)
        self.assertIn('CP_IS_INT64_VALUE', source)
        self.assertNotIn('google/protobuf', header)

    def test_proto3_optional(self):
        # the plugin declares FEATURE_PROTO3_OPTIONAL, so protoc runs it on the
        # file unchanged, and it writes protoc-c's layer too
        rc, stderr, files = run_protoc('optional.proto')
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(sorted(files), ['optional.cp.c', 'optional.cp.h',
                                         'optional.pb-c.c', 'optional.pb-c.h'])
        header, source = files['optional.cp.h'], files['optional.cp.c']
        self.assertIn('gboolean cgopt_maybe_has_count (CgoptMaybe *self);', header)
        self.assertIn('void cgopt_maybe_clear_label (CgoptMaybe *self);', header)
        self.assertIn('g_param_spec_boolean ("has-count"', source)
        # the synthetic oneof is the presence: a case member in protoc-c's struct
        self.assertIn('_count_case;', files['optional.pb-c.h'])
        self.assertIn('return m->_count_case == 1;', source)
        # only the real oneof gets a case enum
        self.assertIn('CgoptMaybeChoiceCase', header)
        self.assertNotIn('CountCase', header)
        # a file without optional fields: the same four files
        rc, stderr, files = run_protoc('errors/optional.proto')
        self.assertEqual(rc, 0, stderr)
        self.assertIn('clash_msg_has_maybe', files['errors/optional.cp.h'])

    def test_c_layer_parameter(self):
        rc, stderr, files = run_protoc('other.proto', '--cp_opt=c_layer=no')
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(sorted(files), ['other.cp.c', 'other.cp.h'])
        with self.assertRaises(cg.GeneratorError):
            cg.parse_parameter('c_layer=maybe')

    def test_outputs_and_includes(self):
        rc, stderr, files = run_protoc('other.proto')
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(sorted(files), ['other.cp.c', 'other.cp.h', 'other.pb-c.c', 'other.pb-c.h'])
        self.assertIn('#include "everything.cp.h"', files['other.cp.h'])
        self.assertIn('#include "other.pb-c.h"', files['other.cp.c'])
        self.assertIn('G_DECLARE_FINAL_TYPE (CgotherForeign, cgother_foreign, CGOTHER, FOREIGN, CpMessage)',
                      files['other.cp.h'])

    def test_decorator(self):
        rc, stderr, files = run_protoc('nopkg.proto', '--cp_opt=decorator=NOPKG_API,include=nopkg-api.h')
        self.assertEqual(rc, 0, stderr)
        header = files['nopkg.cp.h']
        self.assertIn('#include "nopkg-api.h"', header)
        self.assertIn('#include <connectplugin.h>', header)
        self.assertIn('NOPKG_API\nNopkgThing *nopkg_thing_new (void);', header)
        self.assertIn('NOPKG_API\nG_DECLARE_FINAL_TYPE (NopkgThing', header)

    def test_base_header(self):
        # The library's own protos stand on a header of their own instead
        # of the umbrella header (which includes them).
        rc, stderr, files = run_protoc('other.proto', '--cp_opt=base=cp-protocol-base.h')
        self.assertEqual(rc, 0, stderr)
        header = files['other.cp.h']
        self.assertIn('#pragma once\n\n#include "cp-protocol-base.h"\n#include "everything.cp.h"\n', header)
        self.assertNotIn('connectplugin.h', header)

    def test_enum_names_and_comments(self):
        rc, stderr, files = run_protoc('everything.proto')
        self.assertEqual(rc, 0, stderr)
        header = files['everything.cp.h']
        self.assertIn('CGTEST_COLOR_DARK_GREEN = 2,', header)
        self.assertIn('CGTEST_COLOR_BLUE = -3,', header)
        self.assertIn('CGTEST_SHAPE_BIG_TRIANGLE = 7,', header)
        self.assertIn('CGTEST_OUTER_KIND_SOME = 1,', header)
        self.assertIn(' * A colour, values prefixed with the enum name.', header)
        self.assertIn('{ CGTEST_COLOR_DARK_GREEN, "CGTEST_COLOR_DARK_GREEN", "dark-green" }',
                      files['everything.cp.c'])
        # map entries get no class
        self.assertNotIn('LabelsEntry', header)


class Services(unittest.TestCase):
    assert_fails = Errors.assert_fails

    def test_clash_methods(self):
        self.assert_fails('errors/clash-methods.proto',
                          'method clash.v1.S.GetItem and method clash.v1.S.Get_Item both map')

    def test_clash_service_and_message(self):
        self.assert_fails('errors/clash-service-message.proto',
                          'message clash.v1.StoreProxy and service clash.v1.Store both map to '
                          'the C identifier "ClashStoreProxy"')

    def test_unsupported_well_known(self):
        self.assert_fails('errors/service-unsupported-wkt.proto',
                          'clash.v1.S.Now: output type google.protobuf.Timestamp has no '
                          'CpMessage class')

    def test_names_and_kinds(self):
        rc, stderr, files = run_protoc('services.proto')
        self.assertEqual(rc, 0, stderr)
        header, source = files['services.cp.h'], files['services.cp.c']
        self.assertIn('#include "everything.cp.h"', header)
        self.assertIn('G_DECLARE_INTERFACE (SvcCalculator, svc_calculator, SVC, CALCULATOR, GObject)',
                      header)
        self.assertIn('G_DECLARE_DERIVABLE_TYPE (SvcCalculatorProxy, svc_calculator_proxy, SVC, '
                      'CALCULATOR_PROXY, CpProxy)', header)
        self.assertIn('G_DECLARE_DERIVABLE_TYPE (SvcCalculatorSkeleton, svc_calculator_skeleton, '
                      'SVC, CALCULATOR_SKELETON, CpSkeleton)', header)
        # unary: async, finish, sync, complete
        self.assertIn('void svc_calculator_call_ping (SvcCalculator *proxy, SvcPingRequest *request, '
                      'CpCallOptions *options, GCancellable *cancellable, '
                      'GAsyncReadyCallback callback, gpointer user_data);', header)
        self.assertIn('SvcPingResponse *svc_calculator_call_ping_finish (', header)
        self.assertIn('SvcPingResponse *svc_calculator_call_ping_sync (', header)
        self.assertIn('void svc_calculator_complete_ping (SvcCalculator *object, '
                      'CpInvocation *invocation, SvcPingResponse *response);', header)
        # client streaming: a request stream, no request in the handler
        self.assertIn('CpRequestStream *svc_calculator_call_sum (SvcCalculator *proxy, '
                      'CpCallOptions *options);', header)
        self.assertIn('gboolean (*handle_sum) (SvcCalculator *object,\n'
                      '                          CpInvocation *invocation);', header)
        self.assertIn('void svc_calculator_complete_sum (', header)
        # server streaming: a response stream, no complete helper
        self.assertIn('CpResponseStream *svc_calculator_call_count (SvcCalculator *proxy, '
                      'SvcNumber *request, CpCallOptions *options);', header)
        self.assertNotIn('svc_calculator_complete_count', header)
        self.assertNotIn('svc_calculator_call_count_sync', header)
        # method names: snake case, kebab-case signals
        self.assertIn('svc_echo_call_get_http_info_sync', header)
        self.assertIn('g_signal_new ("handle-get-http-info"', source)
        self.assertIn('CgtestNested *request', header)
        # the descriptor: kinds and idempotency
        self.assertIn('cp_service_descriptor_new ("svc.v1.Calculator", SVC_TYPE_CALCULATOR_PROXY, '
                      'SVC_TYPE_CALCULATOR_SKELETON)', source)
        self.assertIn('cp_method_info_new ("/svc.v1.Calculator/Sum", CP_METHOD_CLIENT_STREAMING,',
                      source)
        self.assertIn('cp_method_info_set_idempotency (info, CP_IDEMPOTENCY_IDEMPOTENT);', source)
        self.assertIn('cp_method_info_set_idempotency (info, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);',
                      source)
        self.assertIn('g_signal_accumulator_true_handled', source)
        # an empty service
        self.assertIn('svc_idle_get_descriptor', header)
        # proto comments become docs
        self.assertIn(' * Adds numbers.', source)
        self.assertIn(' * Counts from 1 to `value` (server streaming).', source)

    def test_bidi_generated(self):
        rc, stderr, files = run_protoc('services.proto')
        self.assertEqual(rc, 0, stderr)
        self.assertNotIn('warning', stderr)
        header, source = files['services.cp.h'], files['services.cp.c']
        self.assertIn('CpRequestStream *svc_calculator_call_chat (SvcCalculator *proxy, '
                      'CpCallOptions *options);', header)
        self.assertIn('gboolean (*handle_chat) (SvcCalculator *object,', header)
        self.assertNotIn('svc_calculator_complete_chat', header)
        self.assertIn('cp_proxy_call_bidi_stream (CP_PROXY (proxy), "Chat", options)', source)
        self.assertIn('g_signal_new ("handle-chat"', source)
        self.assertIn('cp_method_info_new ("/svc.v1.Calculator/Chat", CP_METHOD_BIDI_STREAMING,',
                      source)

    def test_doc_links(self):
        # Doc comments link in gi-docgen syntax, each type in its own GIR
        # namespace (namespace= overrides the prefix's), never as #CpType.
        rc, stderr, files = run_protoc('services.proto', '--cp_opt=namespace=Services')
        self.assertEqual(rc, 0, stderr)
        header, source = files['services.cp.h'], files['services.cp.c']
        for text in (header, source):
            self.assertNotRegex(text, r'#[A-Z][A-Za-z]+[ .:,)]')
        self.assertIn('a [class@Services.CalculatorProxy]', source)
        self.assertIn('[signal@Services.Calculator::handle-ping]', source)
        self.assertIn('the [iface@Services.Calculator] receiving the call', source)
        self.assertIn('[class@ConnectPlugin.ResponseStream]', source)
        self.assertIn('[signal@ConnectPlugin.ResponseStream::closed]', source)
        self.assertIn('a [class@Gio.Cancellable]', source)
        self.assertIn('The class structure of [class@Services.CalculatorSkeleton].', header)
        rc, stderr, files = run_protoc('optional.proto')
        self.assertEqual(rc, 0, stderr)
        self.assertIn('[property@Cgopt.Maybe:has-count]', files['optional.cp.c'])

    def test_well_known_types(self):
        rc, stderr, files = run_protoc('wkt-service.proto')
        self.assertEqual(rc, 0, stderr)
        header, source = files['wkt-service.cp.h'], files['wkt-service.cp.c']
        self.assertIn('CpBoolValue *cgwkt_lamp_call_toggle_sync (CgwktLamp *proxy, '
                      'CpEmpty *request,', header)
        self.assertIn('void cgwkt_lamp_complete_rename (CgwktLamp *object, '
                      'CpInvocation *invocation, CpEmpty *response);', header)
        self.assertIn('CP_TYPE_EMPTY, CP_TYPE_BOOL_VALUE', source)
        self.assertNotIn('google/protobuf', header)

    def test_deprecated(self):
        rc, stderr, files = run_protoc('deprecated.proto')
        self.assertEqual(rc, 0, stderr)
        header, source = files['deprecated.cp.h'], files['deprecated.cp.c']
        # Functions: G_DEPRECATED, and only those of deprecated elements.
        for fn in ('cgdep_live_service_call_stale (', 'cgdep_live_service_call_stale_finish (',
                   'cgdep_live_service_call_stale_sync (', 'cgdep_live_service_complete_stale (',
                   'cgdep_gone_service_call_call (', 'cgdep_gone_service_proxy_new (',
                   'cgdep_gone_service_skeleton_new (', 'cgdep_gone_service_get_descriptor (',
                   'cgdep_thing_get_alias (', 'cgdep_thing_set_alias (',
                   'cgdep_relic_new (', 'cgdep_relic_get_age ('):
            line = next(l for l in header.split('\n') if fn in l)
            self.assertTrue(line.startswith('G_DEPRECATED '), line)
        for fn in ('cgdep_live_service_call_fresh (', 'cgdep_live_service_proxy_new (',
                   'cgdep_thing_get_name (', 'cgdep_thing_new ('):
            line = next(l for l in header.split('\n') if fn in l)
            self.assertNotIn('G_DEPRECATED', line)
        # Docs (the GIR's deprecated attribute), signals and properties.
        self.assertIn(' * cgdep_live_service_call_stale_sync:', source)
        block = source[source.index(' * cgdep_live_service_call_stale_sync:'):]
        block = block[:block.index('*/')]
        self.assertIn('Deprecated: `cgdep.v1.LiveService.Stale` is marked deprecated in '
                      'deprecated.proto.', block)
        block = source[source.index(' * cgdep_live_service_call_fresh_sync:'):]
        self.assertNotIn('Deprecated:', block[:block.index('*/')])
        self.assertIn('"handle-stale", G_TYPE_FROM_INTERFACE (iface), '
                      'G_SIGNAL_RUN_LAST | G_SIGNAL_DEPRECATED', source)
        self.assertIn('"handle-fresh", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST,', source)
        self.assertIn('g_param_spec_string ("alias", NULL, NULL, "", G_PARAM_READWRITE | '
                      'G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS | G_PARAM_DEPRECATED)', source)
        self.assertNotIn('G_PARAM_DEPRECATED', source[source.index('g_param_spec_string ("name"'):]
                         .split('\n')[0])
        # The generated code uses its own deprecated functions silently.
        self.assertIn('G_GNUC_BEGIN_IGNORE_DEPRECATIONS', source)
        self.assertTrue(source.rstrip().endswith('G_GNUC_END_IGNORE_DEPRECATIONS'))
        # Without deprecations, nothing of it.
        rc, stderr, files = run_protoc('services.proto')
        self.assertEqual(rc, 0, stderr)
        self.assertNotIn('G_DEPRECATED', files['services.cp.h'])
        self.assertNotIn('IGNORE_DEPRECATIONS', files['services.cp.c'])

    def test_no_services_no_service_code(self):
        rc, stderr, files = run_protoc('everything.proto')
        self.assertEqual(rc, 0, stderr)
        self.assertNotIn('cp-skeleton.h', files['everything.cp.h'])
        self.assertEqual(stderr, '')


if __name__ == '__main__':
    unittest.main(verbosity=2)
