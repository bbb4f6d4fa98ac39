#!@PYTHON@
# protoc-gen-cp: protoc plugin generating connectplugin GObject classes
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage:
#   protoc --plugin=protoc-gen-cp=PATH --c_out=OUT --cp_out=OUT foo.proto
#
# For every foo.proto it writes foo.cp.h and foo.cp.c next to protoc-c's
# foo.pb-c.h and foo.pb-c.c: one CpMessage subclass per message, one GEnum per
# enum, typed accessors and GObject properties; per service a GInterface, a
# CpProxy and a CpSkeleton subclass (gdbus-codegen's shape) and a
# CpServiceDescriptor. See codegen/README.md for the naming rules and the
# type mapping.
#
# Parameters (--cp_opt=KEY=VALUE, comma-separated, or --cp_out=KEY=VALUE:OUT):
#   prefix=Foo        namespace of the generated types (default: the first
#                     package component, capitalised, or the file name stem)
#   decorator=MACRO   put MACRO before every public declaration (e.g. an
#                     export macro such as FOO_AVAILABLE_IN_ALL)
#   include=FILE.h    #include "FILE.h" in every generated header (where
#                     the decorator is defined)

import re
import sys

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

FDP = descriptor_pb2.FieldDescriptorProto


class GeneratorError(Exception):
    pass


# ---------------------------------------------------------------------------
# protoc-c's naming rules (protoc-c/c_helpers.cc, protobuf-c 1.4), needed to
# name the structs, members and descriptors protoc-c generates.

PROTOC_C_KEYWORDS = frozenset("""
and and_eq asm auto bitand bitor bool break case catch char class compl const
const_cast continue default delete do double dynamic_cast else enum explicit
extern false float for friend goto if inline int long mutable namespace new not
not_eq operator or or_eq private protected public register reinterpret_cast
return short signed sizeof static static_cast struct switch template this throw
true try typedef typeid typename union unsigned using virtual void volatile
wchar_t while xor xor_eq
""".split())


def pbc_camel_to_upper(name):
    rv, was_upper = [], True
    for c in name:
        is_upper = c.isupper()
        if is_upper and not was_upper:
            rv.append('_')
        rv.append(c.upper())
        was_upper = is_upper
    return ''.join(rv)


def pbc_camel_to_lower(name):
    rv, was_upper = [], True
    for c in name:
        is_upper = c.isupper()
        if is_upper:
            if not was_upper:
                rv.append('_')
            rv.append(c.lower())
        else:
            rv.append(c)
        was_upper = is_upper
    return ''.join(rv)


def pbc_to_camel(name):
    rv, next_upper = [], True
    for c in name:
        if c == '_':
            next_upper = True
        elif next_upper:
            rv.append(c.upper())
            next_upper = False
        else:
            rv.append(c)
    return ''.join(rv)


def pbc_full_name_to_c(full_name):
    return '__'.join(pbc_to_camel(p) for p in full_name.split('.') if p)


def pbc_full_name_to_lower(full_name):
    return '__'.join(pbc_camel_to_lower(p) for p in full_name.split('.') if p)


def pbc_field_name(name):
    result = name.lower()
    if result in PROTOC_C_KEYWORDS:
        result += '_'
    return result


# ---------------------------------------------------------------------------
# Our naming rules (GNOME style)

# Field names that would make invalid or clashing C identifiers, or that
# Vala reserves, get a '_' suffix in C identifiers: C11 and C++ keywords
# (as protoc-c), Vala keywords, and names whose accessor would clash with a
# function every class has (kv_x_get_type).
C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof
static struct switch typedef union unsigned void volatile while _Alignas
_Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert
_Thread_local
""".split())
VALA_KEYWORDS = frozenset("""
abstract as async base break case catch class const construct continue
default delegate delete do dynamic else ensures enum errordomain extern false
finally for foreach global if in inline interface internal is lock namespace
new null out override owned params private protected public ref requires
return signal sizeof static struct switch this throw throws true try typeof
unowned using var virtual void volatile weak while yield
""".split())
RESERVED_FIELD_NAMES = C_KEYWORDS | PROTOC_C_KEYWORDS | VALA_KEYWORDS | {'type'}


def camel_to_snake(name):
    """GetRequest → get_request, HTTPRequest → http_request, Int32Value → int32_value."""
    out = []
    for i, c in enumerate(name):
        if c.isupper():
            prev = name[i - 1] if i > 0 else ''
            nxt = name[i + 1] if i + 1 < len(name) else ''
            if i > 0 and prev != '_' and (prev.islower() or prev.isdigit() or
                                          (prev.isupper() and nxt.islower())):
                out.append('_')
            out.append(c.lower())
        else:
            out.append(c)
    return ''.join(out)


def c_comment(text):
    """Proto source comments as doc-comment lines (safe inside /* */)."""
    if not text:
        return []
    lines = text.strip('\n').split('\n')
    out = []
    for line in lines:
        line = line.rstrip()
        if line.startswith(' '):
            line = line[1:]
        line = line.replace('*/', '* /').replace('/*', '/ *')
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


def doc_block(name, body_lines, params=(), returns=None, annotations=''):
    """A gi-docgen comment block."""
    out = ['/**', ' * %s:%s' % (name, (' ' + annotations) if annotations else '')]
    for pname, pdoc in params:
        out.append(' * @%s: %s' % (pname, pdoc))
    out.append(' *')
    for line in body_lines:
        out.append((' * ' + line).rstrip())
    if returns is not None:
        out.append(' *')
        out.append(' * Returns: %s' % returns)
    out.append(' */')
    return out


# ---------------------------------------------------------------------------
# Scalar field kinds

class Scalar:
    def __init__(self, ctype, pbc_ctype, gtype, pspec, gvalue, default='0', gir=None):
        self.ctype = ctype          # type in our API
        self.pbc_ctype = pbc_ctype  # type of protoc-c's member
        self.gtype = gtype
        self.pspec = pspec          # g_param_spec_<pspec>
        self.gvalue = gvalue        # g_value_{get,set}_<gvalue>
        self.default = default


SCALARS = {
    FDP.TYPE_INT32: Scalar('gint', 'int32_t', 'G_TYPE_INT', 'int', 'int'),
    FDP.TYPE_SINT32: Scalar('gint', 'int32_t', 'G_TYPE_INT', 'int', 'int'),
    FDP.TYPE_SFIXED32: Scalar('gint', 'int32_t', 'G_TYPE_INT', 'int', 'int'),
    FDP.TYPE_UINT32: Scalar('guint', 'uint32_t', 'G_TYPE_UINT', 'uint', 'uint'),
    FDP.TYPE_FIXED32: Scalar('guint', 'uint32_t', 'G_TYPE_UINT', 'uint', 'uint'),
    FDP.TYPE_INT64: Scalar('gint64', 'int64_t', 'G_TYPE_INT64', 'int64', 'int64'),
    FDP.TYPE_SINT64: Scalar('gint64', 'int64_t', 'G_TYPE_INT64', 'int64', 'int64'),
    FDP.TYPE_SFIXED64: Scalar('gint64', 'int64_t', 'G_TYPE_INT64', 'int64', 'int64'),
    FDP.TYPE_UINT64: Scalar('guint64', 'uint64_t', 'G_TYPE_UINT64', 'uint64', 'uint64'),
    FDP.TYPE_FIXED64: Scalar('guint64', 'uint64_t', 'G_TYPE_UINT64', 'uint64', 'uint64'),
    FDP.TYPE_FLOAT: Scalar('float', 'float', 'G_TYPE_FLOAT', 'float', 'float'),
    FDP.TYPE_DOUBLE: Scalar('double', 'double', 'G_TYPE_DOUBLE', 'double', 'double'),
    FDP.TYPE_BOOL: Scalar('gboolean', 'protobuf_c_boolean', 'G_TYPE_BOOLEAN', 'boolean',
                          'boolean', 'FALSE'),
}

PSPEC_RANGE = {
    'int': 'G_MININT32, G_MAXINT32, 0',
    'uint': '0, G_MAXUINT32, 0',
    'int64': 'G_MININT64, G_MAXINT64, 0',
    'uint64': '0, G_MAXUINT64, 0',
    'float': '-INFINITY, INFINITY, 0.0f',
    'double': '-INFINITY, INFINITY, 0.0',
    'boolean': 'FALSE',
}

TYPE_NAMES = {v: k[len('TYPE_'):].lower() for k, v in FDP.Type.items()}

# Well-known types with a class in libconnectplugin.
CP_WELL_KNOWN = {
    'google.protobuf.Empty': 'CpEmpty',
    'google.protobuf.StringValue': 'CpStringValue',
    'google.protobuf.BytesValue': 'CpBytesValue',
    'google.protobuf.Int32Value': 'CpInt32Value',
    'google.protobuf.Int64Value': 'CpInt64Value',
    'google.protobuf.BoolValue': 'CpBoolValue',
}


# ---------------------------------------------------------------------------
# The model: names of every message and enum of the request

class Names:
    """C names of a generated type: camel KvGetRequest, snake kv_get_request,
    module KV, obj GET_REQUEST."""

    def __init__(self, prefix, type_part_camel):
        self.prefix = prefix
        self.camel = prefix + type_part_camel
        self.prefix_snake = camel_to_snake(prefix)
        self.part_snake = camel_to_snake(type_part_camel)
        self.snake = self.prefix_snake + '_' + self.part_snake
        self.module = self.prefix_snake.upper()
        self.obj = self.part_snake.upper()
        self.upper = self.snake.upper()
        self.type_macro = '%s_TYPE_%s' % (self.module, self.obj)
        self.is_macro = '%s_IS_%s' % (self.module, self.obj)
        self.cast_macro = self.upper


class TypeInfo:
    def __init__(self, kind, full_name, file, desc, names, path, parent=None):
        self.kind = kind            # 'message' or 'enum'
        self.full_name = full_name  # kv.v1.GetRequest
        self.file = file            # FileDescriptorProto
        self.desc = desc
        self.names = names          # Names, or None for map entries
        self.path = path            # SourceCodeInfo path
        self.parent = parent
        self.pbc_c = pbc_full_name_to_c(full_name)
        self.pbc_lower = pbc_full_name_to_lower(full_name)
        self.is_map_entry = kind == 'message' and desc.options.map_entry
        self.well_known = None      # CpEmpty, ... for google.protobuf types

    @property
    def descriptor_symbol(self):
        return self.pbc_lower + '__descriptor'


def file_stem(name):
    base = name.rsplit('/', 1)[-1]
    if base.endswith('.proto'):
        base = base[:-len('.proto')]
    return base


def default_prefix(file):
    if file.package:
        first = file.package.split('.')[0]
    else:
        first = re.sub(r'[^A-Za-z0-9_]', '_', file_stem(file.name))
    prefix = pbc_to_camel(first)
    if not re.match(r'^[A-Z][A-Za-z0-9]*$', prefix):
        raise GeneratorError('%s: cannot make a C namespace from "%s"; pass --cp_opt=prefix=Name'
                             % (file.name, first))
    return prefix


class Field:
    def __init__(self, msg, fdesc, index, model):
        self.msg = msg
        self.desc = fdesc
        self.index = index
        self.name = fdesc.name
        self.number = fdesc.number
        self.type = fdesc.type
        self.repeated = fdesc.label == FDP.LABEL_REPEATED
        self.pbc_member = pbc_field_name(fdesc.name)
        ident = camel_to_snake(fdesc.name).lower()
        if ident in RESERVED_FIELD_NAMES:
            ident += '_'
        self.ident = ident
        prop = fdesc.name.lstrip('_').replace('_', '-')
        if not prop or not re.match(r'^[A-Za-z][A-Za-z0-9-]*$', prop):
            raise GeneratorError('%s: field "%s" cannot be a GObject property name'
                                 % (msg.full_name, fdesc.name))
        self.prop = prop
        self.prop_enum = '%s_PROP_%s' % (msg.names.upper, ident.upper().rstrip('_'))
        self.oneof = None
        # Real oneofs only: proto3 `optional` makes a synthetic oneof that a
        # later phase will map to has_/clear_ accessors.
        if fdesc.HasField('oneof_index') and not fdesc.proto3_optional:
            self.oneof = msg.oneofs[fdesc.oneof_index]
            self.oneof.fields.append(self)
        if fdesc.proto3_optional:
            raise GeneratorError('%s.%s: proto3 optional fields are not supported yet'
                                 % (msg.full_name, fdesc.name))
        self.ref = None  # TypeInfo of a message or enum field
        if self.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
            self.ref = model.types.get(fdesc.type_name.lstrip('.'))
            if self.ref is None:
                raise GeneratorError('%s.%s: unknown type %s'
                                     % (msg.full_name, fdesc.name, fdesc.type_name))
        if self.type == FDP.TYPE_GROUP:
            raise GeneratorError('%s.%s: groups are not supported' % (msg.full_name, fdesc.name))
        self.map_entry = self.ref if (self.ref and self.ref.is_map_entry) else None

        # kind: scalar enum string bytes message rep_scalar rep_enum
        # rep_string rep_bytes rep_message map_ss map_other
        if self.map_entry:
            key, value = self.map_entry.desc.field[0], self.map_entry.desc.field[1]
            if key.type == FDP.TYPE_STRING and value.type == FDP.TYPE_STRING:
                self.kind = 'map_ss'
            else:
                self.kind = 'map_other'
        else:
            base = {FDP.TYPE_STRING: 'string', FDP.TYPE_BYTES: 'bytes',
                    FDP.TYPE_MESSAGE: 'message', FDP.TYPE_ENUM: 'enum'}.get(self.type, 'scalar')
            self.kind = ('rep_' + base) if self.repeated else base
        if self.ref is not None and self.ref.names is None and not self.map_entry:
            raise GeneratorError('%s.%s: message type %s has no CpMessage class '
                                 '(only Empty and the String/Bytes/Int32/Int64/Bool '
                                 'wrappers of google.protobuf have one)'
                                 % (msg.full_name, fdesc.name, self.ref.full_name))

    @property
    def has_property(self):
        return self.kind in ('scalar', 'enum', 'string', 'bytes', 'message',
                             'rep_string', 'map_ss')

    @property
    def has_accessors(self):
        return self.kind != 'map_other'

    @property
    def scalar(self):
        return SCALARS.get(self.type)

    def proto_type_name(self):
        if self.map_entry:
            k, v = self.map_entry.desc.field[0], self.map_entry.desc.field[1]
            vt = v.type_name.lstrip('.') if v.type_name else TYPE_NAMES[v.type]
            return 'map<%s, %s>' % (TYPE_NAMES[k.type], vt)
        t = self.ref.full_name if self.ref else TYPE_NAMES[self.type]
        return ('repeated ' if self.repeated else '') + t


class Oneof:
    def __init__(self, msg, odesc, index):
        self.msg = msg
        self.name = odesc.name
        self.index = index
        self.fields = []
        ident = camel_to_snake(odesc.name).lower()
        self.ident = ident
        self.pbc_case_member = pbc_camel_to_lower(odesc.name) + '_case'
        self.case_names = Names(msg.names.prefix,
                                pbc_to_camel(msg.names.camel[len(msg.names.prefix):]) +
                                pbc_to_camel(odesc.name) + 'Case')
        self.synthetic = False


class Message:
    def __init__(self, info, model):
        self.info = info
        self.full_name = info.full_name
        self.names = info.names
        self.desc = info.desc
        self.oneofs = [Oneof(self, o, i) for i, o in enumerate(info.desc.oneof_decl)]
        self.fields = [Field(self, f, i, model) for i, f in enumerate(info.desc.field)]
        for o in self.oneofs:
            if o.fields and all(f.desc.proto3_optional for f in o.fields):
                o.synthetic = True
        self.real_oneofs = [o for o in self.oneofs if o.fields and not o.synthetic]


class Method:
    KINDS = {
        (False, False): 'CP_METHOD_UNARY',
        (True, False): 'CP_METHOD_CLIENT_STREAMING',
        (False, True): 'CP_METHOD_SERVER_STREAMING',
        (True, True): 'CP_METHOD_BIDI_STREAMING',
    }
    IDEMPOTENCY = {
        0: 'CP_IDEMPOTENCY_UNKNOWN',
        1: 'CP_IDEMPOTENCY_NO_SIDE_EFFECTS',
        2: 'CP_IDEMPOTENCY_IDEMPOTENT',
    }

    def __init__(self, service, mdesc, index, model):
        self.service = service
        self.desc = mdesc
        self.index = index
        self.name = mdesc.name
        self.procedure = '/%s/%s' % (service.full_name, mdesc.name)
        self.client_streaming = mdesc.client_streaming
        self.server_streaming = mdesc.server_streaming
        self.kind = self.KINDS[(self.client_streaming, self.server_streaming)]
        self.bidi = self.client_streaming and self.server_streaming
        self.idempotency = self.IDEMPOTENCY.get(mdesc.options.idempotency_level,
                                                'CP_IDEMPOTENCY_UNKNOWN')
        if not re.match(r'^[A-Za-z][A-Za-z0-9_]*$', mdesc.name):
            raise GeneratorError('%s.%s: method name cannot be a C identifier'
                                 % (service.full_name, mdesc.name))
        self.ident = camel_to_snake(mdesc.name).lower()
        self.signal = 'handle-' + self.ident.replace('_', '-')
        self.vfunc = 'handle_' + self.ident
        self.input = self._message_type(mdesc.input_type, model, 'input')
        self.output = self._message_type(mdesc.output_type, model, 'output')

    def _message_type(self, type_name, model, what):
        info = model.types.get(type_name.lstrip('.'))
        where = '%s.%s' % (self.service.full_name, self.name)
        if info is None or info.kind != 'message':
            raise GeneratorError('%s: unknown %s type %s' % (where, what, type_name))
        if info.names is None:
            raise GeneratorError('%s: %s type %s has no CpMessage class (only Empty and the '
                                 'String/Bytes/Int32/Int64/Bool wrappers of google.protobuf '
                                 'have one)' % (where, what, info.full_name))
        return info


class Service:
    def __init__(self, file, sdesc, index, prefix, model):
        self.file = file
        self.desc = sdesc
        self.index = index
        self.name = sdesc.name
        self.full_name = (file.package + '.' + sdesc.name) if file.package else sdesc.name
        camel = pbc_to_camel(sdesc.name)
        if not re.match(r'^[A-Z][A-Za-z0-9]*$', camel):
            raise GeneratorError('%s: service name cannot be a C type name' % self.full_name)
        self.names = Names(prefix, camel)
        self.proxy = Names(prefix, camel + 'Proxy')
        self.skeleton = Names(prefix, camel + 'Skeleton')
        self.path = [6, index]
        self.methods = [Method(self, m, i, model) for i, m in enumerate(sdesc.method)]
        # Bidirectional streams need HTTP/2 and a full-duplex API: for now
        # they are described (the descriptor lists them, servers answer
        # `unimplemented`) but get no signal and no call function.
        self.bidi = [m for m in self.methods if m.bidi]
        self.served = [m for m in self.methods if not m.bidi]


class Model:
    def __init__(self, request, params):
        self.params = params
        self.types = {}
        self.files = {f.name: f for f in request.proto_file}
        self.to_generate = set(request.file_to_generate)
        for f in request.proto_file:
            self._index_file(f)

    def prefix_for(self, file):
        if file.name in self.to_generate and self.params.get('prefix'):
            return self.params['prefix']
        return default_prefix(file)

    def _index_file(self, file):
        pkg = file.package
        prefix = None

        def get_prefix():
            nonlocal prefix
            if prefix is None:
                prefix = self.prefix_for(file)
            return prefix

        def full(name, parent_full):
            if parent_full:
                return parent_full + '.' + name
            return (pkg + '.' + name) if pkg else name

        def camel_part(full_name):
            rel = full_name[len(pkg) + 1:] if pkg else full_name
            return ''.join(pbc_to_camel(p) for p in rel.split('.'))

        def add_enum(e, parent_full, path, parent):
            fn = full(e.name, parent_full)
            names = Names(get_prefix(), camel_part(fn)) if self._generates(file) else None
            if fn in self.types:
                raise GeneratorError('%s is defined twice' % fn)
            self.types[fn] = TypeInfo('enum', fn, file, e, names, path, parent)

        def add_message(m, parent_full, path, parent):
            fn = full(m.name, parent_full)
            names = None
            if not m.options.map_entry:
                if fn in CP_WELL_KNOWN:
                    names = Names('Cp', CP_WELL_KNOWN[fn][2:])
                elif self._generates(file):
                    names = Names(get_prefix(), camel_part(fn))
            info = TypeInfo('message', fn, file, m, names, path, parent)
            if fn in CP_WELL_KNOWN:
                info.well_known = CP_WELL_KNOWN[fn]
            self.types[fn] = info
            for i, n in enumerate(m.nested_type):
                add_message(n, fn, path + [3, i], info)
            for i, e in enumerate(m.enum_type):
                add_enum(e, fn, path + [4, i], info)

        for i, m in enumerate(file.message_type):
            add_message(m, None, [4, i], None)
        for i, e in enumerate(file.enum_type):
            add_enum(e, None, [5, i], None)

    def _generates(self, file):
        # Types of google/protobuf files are only usable through the
        # classes libconnectplugin ships (CP_WELL_KNOWN).
        return not file.package.startswith('google.protobuf') or file.name in self.to_generate


# ---------------------------------------------------------------------------
# Identifier registry: two proto names mapping to one C identifier are an
# error, reported with both origins.

class Identifiers:
    def __init__(self):
        self.seen = {}

    def add(self, ident, origin):
        other = self.seen.get(ident)
        if other is not None and other != origin:
            raise GeneratorError('name clash: %s and %s both map to the C identifier "%s"'
                                 % (other, origin, ident))
        self.seen[ident] = origin


class FileGenerator:
    def __init__(self, model, file, idents):
        self.model = model
        self.file = file
        if file.syntax != 'proto3':
            raise GeneratorError('%s: only proto3 files are supported (syntax is "%s")'
                                 % (file.name, file.syntax or 'proto2'))
        self.idents = idents
        self.params = model.params
        self.comments = {}
        for loc in file.source_code_info.location:
            if loc.leading_comments:
                self.comments[tuple(loc.path)] = loc.leading_comments
        self.enums = []
        self.messages = []
        for info in model.types.values():
            if info.file is not file:
                continue
            if info.kind == 'enum':
                self.enums.append(info)
            elif not info.is_map_entry:
                self.messages.append(Message(info, model))
        self.stem = file.name[:-len('.proto')] if file.name.endswith('.proto') else file.name
        self.services = [Service(file, sd, i, model.prefix_for(file), model)
                         for i, sd in enumerate(file.service)]
        self.register_identifiers()
        self.register_service_identifiers()

    def warnings(self):
        out = []
        for s in self.services:
            for m in s.bidi:
                out.append('%s: %s.%s: bidirectional streaming methods are not supported yet; '
                           'the method is listed in the service descriptor (servers answer '
                           '`unimplemented`) but has no handler signal and no call function'
                           % (self.file.name, s.full_name, m.name))
        return out

    # -- identifiers ------------------------------------------------------

    def register_identifiers(self):
        add = self.idents.add
        for e in self.enums:
            origin = 'enum %s' % e.full_name
            n = e.names
            for ident in (n.camel, n.type_macro, n.snake + '_get_type'):
                add(ident, origin)
            for v in self.enum_values(e):
                add(v[0], '%s value %s' % (origin, v[3]))
        for m in self.messages:
            n = m.names
            origin = 'message %s' % m.full_name
            for ident in (n.camel, n.camel + 'Class', n.type_macro, n.is_macro,
                          n.cast_macro,
                          n.snake + '_get_type', n.snake + '_new', n.snake + '_init',
                          n.snake + '_class_init', n.snake + '_parent_class',
                          n.snake + '_props', n.snake + '_get_property',
                          n.snake + '_set_property', n.snake + '_class_intern_init',
                          n.camel + '_private_offset', n.snake + '_get_instance_private',
                          n.upper + '_N_PROPS', n.upper + '_PROP_0'):
                add(ident, origin)
            props = {}
            for f in m.fields:
                forigin = 'field %s.%s' % (m.full_name, f.name)
                if f.has_accessors:
                    add(n.snake + '_get_' + f.ident, forigin)
                    add(n.snake + '_set_' + f.ident, forigin)
                if f.has_property:
                    add(f.prop_enum, forigin)
                canon = f.prop.replace('_', '-')
                if canon in props:
                    raise GeneratorError('name clash: field %s.%s and field %s.%s both map to '
                                         'the property "%s"' % (m.full_name, props[canon],
                                                                m.full_name, f.name, canon))
                props[canon] = f.name
            for o in m.real_oneofs:
                origin = 'oneof %s.%s' % (m.full_name, o.name)
                cn = o.case_names
                for ident in (cn.camel, cn.type_macro, cn.snake + '_get_type',
                              n.snake + '_get_' + o.ident + '_case',
                              n.snake + '_clear_' + o.ident,
                              n.snake + '_' + o.ident + '_free_members'):
                    add(ident, origin)
                for v in self.case_values(o):
                    add(v[0], '%s case %s' % (origin, v[2]))

    # -- services ---------------------------------------------------------

    def service_comment(self, s, method=None):
        path = tuple(s.path) + ((2, method.index) if method else ())
        return c_comment(self.comments.get(path))

    def register_service_identifiers(self):
        add = self.idents.add
        for s in self.services:
            n, p, k = s.names, s.proxy, s.skeleton
            origin = 'service %s' % s.full_name
            for ident in (n.camel, n.camel + 'Interface', n.type_macro, n.is_macro,
                          n.cast_macro, n.upper + '_GET_IFACE',
                          n.snake + '_get_type', n.snake + '_default_init',
                          n.snake + '_get_descriptor', n.snake + '_signals',
                          n.upper + '_N_SIGNALS'):
                add(ident, origin)
            for names in (p, k):
                for ident in (names.camel, names.camel + 'Class', names.type_macro,
                              names.is_macro, names.cast_macro,
                              names.upper + '_CLASS', names.upper + '_GET_CLASS',
                              names.is_macro + '_CLASS',
                              names.snake + '_get_type', names.snake + '_new',
                              names.snake + '_init', names.snake + '_class_init',
                              names.snake + '_iface_init', names.snake + '_parent_class',
                              names.snake + '_class_intern_init',
                              names.camel + '_private_offset'):
                    add(ident, origin)
            add(k.snake + '_dispatch', origin)
            for m in s.methods:
                morigin = 'method %s.%s' % (s.full_name, m.name)
                add('%s_SIGNAL_%s' % (n.upper, m.vfunc.upper()), morigin)
                if m.bidi:
                    continue
                add('%s_%s' % (n.snake, m.vfunc), morigin)
                for suffix in self.call_suffixes(m):
                    add('%s_call_%s%s' % (n.snake, m.ident, suffix), morigin)
                if self.has_complete(m):
                    add('%s_complete_%s' % (n.snake, m.ident), morigin)

    @staticmethod
    def call_suffixes(m):
        if m.client_streaming or m.server_streaming:
            return ('',)
        return ('', '_finish', '_sync')

    @staticmethod
    def has_complete(m):
        return not m.server_streaming

    def vfunc_params(self, s, m):
        params = ['%s *object' % s.names.camel, 'CpInvocation *invocation']
        if not m.client_streaming:
            params.append('%s *request' % m.input.names.camel)
        return params

    def service_prototypes(self, s):
        n = s.names
        obj = '%s *proxy' % n.camel
        protos = ['CpServiceDescriptor *%s_get_descriptor (void)' % n.snake]
        for m in s.served:
            call = '%s_call_%s' % (n.snake, m.ident)
            req = '%s *request' % m.input.names.camel
            resp = '%s *' % m.output.names.camel
            if m.server_streaming:
                protos.append('CpResponseStream *%s (%s, %s, CpCallOptions *options)'
                              % (call, obj, req))
            elif m.client_streaming:
                protos.append('CpRequestStream *%s (%s, CpCallOptions *options)' % (call, obj))
            else:
                protos.append('void %s (%s, %s, CpCallOptions *options, '
                              'GCancellable *cancellable, GAsyncReadyCallback callback, '
                              'gpointer user_data)' % (call, obj, req))
                protos.append('%s%s_finish (%s, GAsyncResult *res, GError **error)'
                              % (resp, call, obj))
                protos.append('%s%s_sync (%s, %s, CpCallOptions *options, '
                              'GCancellable *cancellable, GError **error)'
                              % (resp, call, obj, req))
        for m in s.served:
            if self.has_complete(m):
                protos.append('void %s_complete_%s (%s *object, CpInvocation *invocation, '
                              '%s *response)' % (n.snake, m.ident, n.camel, m.output.names.camel))
        protos.append('%s *%s_proxy_new (CpChannel *channel)' % (n.camel, n.snake))
        protos.append('%s *%s_skeleton_new (void)' % (n.camel, n.snake))
        return protos

    def gen_services_header(self, out):
        w = out.append
        for s in self.services:
            n, p, k = s.names, s.proxy, s.skeleton
            w('/* %s */' % s.full_name)
            w('')
            w('#define %s (%s_get_type ())' % (n.type_macro, n.snake))
            w(self.decl('G_DECLARE_INTERFACE (%s, %s, %s, %s, GObject)'
                        % (n.camel, n.snake, n.module, n.obj)))
            w('')
            out.extend(doc_block(
                n.camel + 'Interface',
                ['The virtual methods of #%s: the class handlers of its' % n.camel,
                 '`handle-<method>` signals. Override them in a subclass of',
                 '#%s.' % k.camel],
                [('parent_iface', 'the parent interface')] +
                [(m.vfunc, 'handler for the #%s::%s signal' % (n.camel, m.signal))
                 for m in s.served]))
            w('struct _%sInterface' % n.camel)
            w('{')
            w('  GTypeInterface parent_iface;')
            for m in s.served:
                w('')
                head = '  gboolean (*%s) (' % m.vfunc
                w(head + (',\n' + ' ' * len(head)).join(self.vfunc_params(s, m)) + ');')
            w('};')
            w('')
            w('#define %s (%s_get_type ())' % (p.type_macro, p.snake))
            w(self.decl('G_DECLARE_DERIVABLE_TYPE (%s, %s, %s, %s, CpProxy)'
                        % (p.camel, p.snake, p.module, p.obj)))
            w('')
            out.extend(doc_block(p.camel + 'Class', ['The class structure of #%s.' % p.camel],
                                 [('parent_class', 'the parent class')]))
            w('struct _%sClass' % p.camel)
            w('{')
            w('  CpProxyClass parent_class;')
            w('')
            w('  /*< private >*/')
            w('  gpointer padding[8];')
            w('};')
            w('')
            w('#define %s (%s_get_type ())' % (k.type_macro, k.snake))
            w(self.decl('G_DECLARE_DERIVABLE_TYPE (%s, %s, %s, %s, CpSkeleton)'
                        % (k.camel, k.snake, k.module, k.obj)))
            w('')
            out.extend(doc_block(k.camel + 'Class', ['The class structure of #%s.' % k.camel],
                                 [('parent_class', 'the parent class')]))
            w('struct _%sClass' % k.camel)
            w('{')
            w('  CpSkeletonClass parent_class;')
            w('')
            w('  /*< private >*/')
            w('  gpointer padding[8];')
            w('};')
            w('')
            for proto in self.service_prototypes(s):
                w(self.decl(proto + ';'))
            w('')

    def gen_services_source(self, out):
        for s in self.services:
            self.gen_service(out, s)

    def gen_service(self, out, s):
        w = out.append
        n, p, k = s.names, s.proxy, s.skeleton
        comment = self.service_comment(s)

        # -- the interface: signals and their class handlers
        body = comment + [''] if comment else []
        body += ['The `%s` service.' % s.full_name, '',
                 'Implemented by #%s, the client side (its' % p.camel,
                 '`%s_call_…()` functions call the service), and by' % n.snake,
                 '#%s, the server side (its `handle-…` signals' % k.camel,
                 'receive the calls). %s_get_descriptor() describes the service.' % n.snake]
        if s.bidi:
            body += ['', 'Bidirectional streaming methods have no signal or call function yet: %s.'
                     % ', '.join('`%s`' % m.name for m in s.bidi)]
        out.extend(doc_block(n.camel, body))
        w('G_DEFINE_INTERFACE (%s, %s, G_TYPE_OBJECT)' % (n.camel, n.snake))
        w('')
        if s.served:
            w('enum {')
            for m in s.served:
                w('  %s_SIGNAL_%s,' % (n.upper, m.vfunc.upper()))
            w('  %s_N_SIGNALS' % n.upper)
            w('};')
            w('')
            w('static guint %s_signals[%s_N_SIGNALS];' % (n.snake, n.upper))
            w('')
        w('static void')
        w('%s_default_init (%sInterface *iface)' % (n.snake, n.camel))
        w('{')
        for i, m in enumerate(s.served):
            if i:
                w('')
            mc = self.service_comment(s, m)
            body = mc + [''] if mc else []
            body += ['Emitted for each call of `%s` (%s).' % (m.procedure, self.kind_text(m)), '']
            params = [('object', 'the #%s receiving the call' % n.camel),
                      ('invocation', 'the call')]
            if m.client_streaming:
                body += ['Read the requests (#%s) with cp_invocation_receive_async(),'
                         % m.input.names.camel,
                         'then answer with %s_complete_%s() or an error.' % (n.snake, m.ident)]
            elif m.server_streaming:
                params.append(('request', 'the request'))
                body += ['The invocation is the response stream: send #%s messages'
                         % m.output.names.camel,
                         'with cp_invocation_send_message() or cp_invocation_send_message_async(),',
                         'then end it with cp_invocation_return_ok() or an error. When the',
                         'client goes away, cp_invocation_get_cancellable() is cancelled.']
            else:
                params.append(('request', 'the request'))
                body += ['Answer with %s_complete_%s() or an error' % (n.snake, m.ident),
                         '(cp_invocation_return_error()), now or later: keep a reference on',
                         '@invocation to answer later.']
            body += ['', 'If nobody handles the call (every handler returns %FALSE and the',
                     'virtual method is not overridden), it is answered `unimplemented`.']
            for line in doc_block('%s::%s' % (n.camel, m.signal), body, params,
                                  returns='%TRUE if the call was handled (the handler answers '
                                          'it, now or later), %FALSE to let the next handler run'):
                w('  ' + line if line else '')
            types = ['CP_TYPE_INVOCATION']
            if not m.client_streaming:
                types.append(m.input.names.type_macro)
            w('  %s_signals[%s_SIGNAL_%s] =' % (n.snake, n.upper, m.vfunc.upper()))
            w('    g_signal_new ("%s", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST,' % m.signal)
            w('                  G_STRUCT_OFFSET (%sInterface, %s),' % (n.camel, m.vfunc))
            w('                  g_signal_accumulator_true_handled, NULL, NULL,')
            w('                  G_TYPE_BOOLEAN, %d, %s);' % (len(types), ', '.join(types)))
        w('}')
        w('')

        # -- the descriptor
        out.extend(doc_block(
            '%s_get_descriptor' % n.snake,
            ['Gets the description of the `%s` service: its methods, and' % s.full_name,
             '#%s and #%s.' % (p.camel, k.camel)],
            returns='(transfer none): the service descriptor'))
        w('CpServiceDescriptor *')
        w('%s_get_descriptor (void)' % n.snake)
        w('{')
        w('  static CpServiceDescriptor *descriptor = NULL;')
        w('')
        w('  if (g_once_init_enter (&descriptor))')
        w('    {')
        w('      CpServiceDescriptor *d = cp_service_descriptor_new ("%s", %s, %s);'
          % (s.full_name, p.type_macro, k.type_macro))
        if s.methods:
            w('      CpMethodInfo *info;')
        for m in s.methods:
            w('')
            w('      info = cp_method_info_new ("%s", %s,' % (m.procedure, m.kind))
            w('                                 %s, %s);' % (m.input.names.type_macro,
                                                           m.output.names.type_macro))
            if m.idempotency != 'CP_IDEMPOTENCY_UNKNOWN':
                w('      cp_method_info_set_idempotency (info, %s);' % m.idempotency)
            w('      cp_service_descriptor_add_method (d, info);')
            w('      cp_method_info_unref (info);')
        w('')
        w('      g_once_init_leave (&descriptor, d);')
        w('    }')
        w('  return descriptor;')
        w('}')
        w('')

        # -- client calls
        proxy_doc = ('proxy', 'a #%s' % p.camel)
        for m in s.served:
            call = '%s_call_%s' % (n.snake, m.ident)
            in_ = m.input.names
            outn = m.output.names
            mc = self.service_comment(s, m)
            intro = mc + [''] if mc else []
            if m.server_streaming:
                out.extend(doc_block(
                    call,
                    intro + ['Calls `%s`, a server-streaming method.' % m.procedure, '',
                             'Connect to the stream\'s #CpResponseStream::message signal, which',
                             'carries #%s messages, and to #CpResponseStream::closed,' % outn.camel,
                             'which tells how the stream ended. The request is sent when',
                             'control returns to the main loop of the thread-default main',
                             'context (or at cp_response_stream_start()); the signals are',
                             'emitted in that context.'],
                    [proxy_doc, ('request', 'the request'),
                     ('options', '(nullable): per-call options')],
                    returns='(transfer full): the response stream'))
                w('CpResponseStream *')
                w('%s (%s *proxy,' % (call, n.camel))
                w('%s %s *request,' % (' ' * len(call), in_.camel))
                w('%s CpCallOptions *options)' % (' ' * len(call)))
                w('{')
                w('  g_return_val_if_fail (%s (proxy), NULL);' % p.is_macro)
                w('  g_return_val_if_fail (%s (request), NULL);' % in_.is_macro)
                w('')
                w('  return cp_proxy_call_server_stream (CP_PROXY (proxy), "%s", CP_MESSAGE (request), options);'
                  % m.name)
                w('}')
                w('')
                continue
            if m.client_streaming:
                out.extend(doc_block(
                    call,
                    intro + ['Calls `%s`, a client-streaming method.' % m.procedure, '',
                             'Send #%s messages with cp_request_stream_send(), then' % in_.camel,
                             'cp_request_stream_close_async() ends the stream; its',
                             'cp_request_stream_close_finish() returns the #%s response.'
                             % outn.camel],
                    [proxy_doc, ('options', '(nullable): per-call options')],
                    returns='(transfer full): the request stream'))
                w('CpRequestStream *')
                w('%s (%s *proxy,' % (call, n.camel))
                w('%s CpCallOptions *options)' % (' ' * len(call)))
                w('{')
                w('  g_return_val_if_fail (%s (proxy), NULL);' % p.is_macro)
                w('')
                w('  return cp_proxy_call_client_stream (CP_PROXY (proxy), "%s", options);' % m.name)
                w('}')
                w('')
                continue
            pad = ' ' * len(call)
            out.extend(doc_block(
                call,
                intro + ['Calls `%s` asynchronously.' % m.procedure, '',
                         '@callback runs in the thread-default main context of the caller;',
                         'call %s_finish() there to get the result.' % call,
                         'See %s_sync() for the blocking version.' % call],
                [proxy_doc, ('request', 'the request'),
                 ('options', '(nullable): per-call options'),
                 ('cancellable', '(nullable): a #GCancellable'),
                 ('callback', '(scope async) (nullable): called when the call completes'),
                 ('user_data', '(closure): data for @callback')]))
            w('void')
            w('%s (%s *proxy,' % (call, n.camel))
            w('%s %s *request,' % (pad, in_.camel))
            w('%s CpCallOptions *options,' % pad)
            w('%s GCancellable *cancellable,' % pad)
            w('%s GAsyncReadyCallback callback,' % pad)
            w('%s gpointer user_data)' % pad)
            w('{')
            w('  g_return_if_fail (%s (proxy));' % p.is_macro)
            w('  g_return_if_fail (%s (request));' % in_.is_macro)
            w('')
            w('  cp_proxy_call_async (CP_PROXY (proxy), "%s", CP_MESSAGE (request), options,' % m.name)
            w('                       cancellable, callback, user_data);')
            w('}')
            w('')
            out.extend(doc_block(
                call + '_finish',
                ['Finishes a call started with %s().' % call],
                [proxy_doc, ('res', 'the #GAsyncResult given to the callback'),
                 ('error', 'return location for a #GError (domain %CP_ERROR)')],
                returns='(transfer full): the response, or %NULL on error'))
            w('%s *' % outn.camel)
            w('%s_finish (%s *proxy,' % (call, n.camel))
            w('%s         GAsyncResult *res,' % pad)
            w('%s         GError **error)' % pad)
            w('{')
            w('  g_return_val_if_fail (%s (proxy), NULL);' % p.is_macro)
            w('')
            w('  return (%s *) cp_proxy_call_finish (CP_PROXY (proxy), res, error);' % outn.camel)
            w('}')
            w('')
            out.extend(doc_block(
                call + '_sync',
                ['Calls `%s` and blocks until it completes, without running' % m.procedure,
                 'the caller\'s main context. Never call it from the thread serving',
                 'the called server (except through an in-process channel): the',
                 'server could not answer. See %s() for the asynchronous version.' % call],
                [proxy_doc, ('request', 'the request'),
                 ('options', '(nullable): per-call options'),
                 ('cancellable', '(nullable): a #GCancellable'),
                 ('error', 'return location for a #GError (domain %CP_ERROR)')],
                returns='(transfer full): the response, or %NULL on error'))
            w('%s *' % outn.camel)
            w('%s_sync (%s *proxy,' % (call, n.camel))
            w('%s       %s *request,' % (pad, in_.camel))
            w('%s       CpCallOptions *options,' % pad)
            w('%s       GCancellable *cancellable,' % pad)
            w('%s       GError **error)' % pad)
            w('{')
            w('  g_return_val_if_fail (%s (proxy), NULL);' % p.is_macro)
            w('  g_return_val_if_fail (%s (request), NULL);' % in_.is_macro)
            w('')
            w('  return (%s *) cp_proxy_call_sync (CP_PROXY (proxy), "%s", CP_MESSAGE (request),'
              % (outn.camel, m.name))
            w('                                      options, cancellable, error);')
            w('}')
            w('')

        # -- server answers
        for m in s.served:
            if not self.has_complete(m):
                continue
            fn = '%s_complete_%s' % (n.snake, m.ident)
            outn = m.output.names
            out.extend(doc_block(
                fn,
                ['Answers a call of `%s` with @response (a helper over' % m.procedure,
                 'cp_invocation_return_message()). Use it once per call, from a handler',
                 'of #%s::%s or later.' % (n.camel, m.signal)],
                [('object', 'a #%s' % n.camel),
                 ('invocation', 'the call, as given to the handler'),
                 ('response', 'the response')]))
            w('void')
            w('%s (%s *object,' % (fn, n.camel))
            w('%s CpInvocation *invocation,' % (' ' * len(fn)))
            w('%s %s *response)' % (' ' * len(fn), outn.camel))
            w('{')
            w('  g_return_if_fail (CP_IS_INVOCATION (invocation));')
            w('  g_return_if_fail (%s (response));' % outn.is_macro)
            w('')
            w('  cp_invocation_return_message (invocation, CP_MESSAGE (response));')
            w('}')
            w('')

        # -- the proxy
        out.extend(doc_block(
            p.camel,
            ['The client side of the `%s` service: a #CpProxy implementing' % s.full_name,
             '#%s. Make one with %s_proxy_new() and call the service with' % (n.camel, n.snake),
             'the `%s_call_…()` functions.' % n.snake]))
        w('static void')
        w('%s_iface_init (%sInterface *iface)' % (p.snake, n.camel))
        w('{')
        w('}')
        w('')
        w('G_DEFINE_TYPE_WITH_CODE (%s, %s, CP_TYPE_PROXY,' % (p.camel, p.snake))
        w('                         G_IMPLEMENT_INTERFACE (%s, %s_iface_init))'
          % (n.type_macro, p.snake))
        w('')
        w('static void')
        w('%s_class_init (%sClass *klass)' % (p.snake, p.camel))
        w('{')
        w('  cp_proxy_class_set_descriptor (CP_PROXY_CLASS (klass), %s_get_descriptor ());' % n.snake)
        w('}')
        w('')
        w('static void')
        w('%s_init (%s *self)' % (p.snake, p.camel))
        w('{')
        w('}')
        w('')
        out.extend(doc_block(
            '%s_proxy_new' % n.snake,
            ['Creates a proxy calling the `%s` service through @channel.' % s.full_name],
            [('channel', 'the channel to call on')],
            returns='(transfer full) (type %s): a new #%s' % (p.camel, p.camel)))
        w('%s *' % n.camel)
        w('%s_proxy_new (CpChannel *channel)' % n.snake)
        w('{')
        w('  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);')
        w('')
        w('  return g_object_new (%s, "channel", channel, NULL);' % p.type_macro)
        w('}')
        w('')

        # -- the skeleton
        out.extend(doc_block(
            k.camel,
            ['The server side of the `%s` service: a #CpSkeleton implementing' % s.full_name,
             '#%s. Serve it with cp_skeleton_export(); implement the' % n.camel,
             'methods by connecting to the `handle-…` signals or by overriding the',
             'virtual methods of #%sInterface in a subclass.' % n.camel]))
        w('static void')
        w('%s_iface_init (%sInterface *iface)' % (k.snake, n.camel))
        w('{')
        w('}')
        w('')
        w('G_DEFINE_TYPE_WITH_CODE (%s, %s, CP_TYPE_SKELETON,' % (k.camel, k.snake))
        w('                         G_IMPLEMENT_INTERFACE (%s, %s_iface_init))'
          % (n.type_macro, k.snake))
        w('')
        w('static gboolean')
        w('%s_dispatch (CpSkeleton   *skeleton,' % k.snake)
        pad = ' ' * len(k.snake + '_dispatch')
        w('%s CpMethodInfo *method,' % pad)
        w('%s CpInvocation *invocation,' % pad)
        w('%s CpMessage    *request)' % pad)
        w('{')
        if s.served:
            w('  const char *name = cp_method_info_get_method_name (method);')
            w('  gboolean handled = FALSE;')
            w('')
            for i, m in enumerate(s.served):
                w('  %sif (strcmp (name, "%s") == 0)' % ('else ' if i else '', m.name))
                if m.client_streaming:
                    w('    g_signal_emit (skeleton, %s_signals[%s_SIGNAL_%s], 0, invocation, &handled);'
                      % (n.snake, n.upper, m.vfunc.upper()))
                else:
                    w('    {')
                    w('      g_return_val_if_fail (%s (request), FALSE);' % m.input.names.is_macro)
                    w('      g_signal_emit (skeleton, %s_signals[%s_SIGNAL_%s], 0, invocation, request,'
                      % (n.snake, n.upper, m.vfunc.upper()))
                    w('                     &handled);')
                    w('    }')
            w('  return handled;')
        else:
            w('  return FALSE;')
        w('}')
        w('')
        w('static void')
        w('%s_class_init (%sClass *klass)' % (k.snake, k.camel))
        w('{')
        w('  CpSkeletonClass *skeleton_class = CP_SKELETON_CLASS (klass);')
        w('')
        w('  cp_skeleton_class_set_descriptor (skeleton_class, %s_get_descriptor ());' % n.snake)
        w('  skeleton_class->dispatch = %s_dispatch;' % k.snake)
        w('}')
        w('')
        w('static void')
        w('%s_init (%s *self)' % (k.snake, k.camel))
        w('{')
        w('}')
        w('')
        out.extend(doc_block(
            '%s_skeleton_new' % n.snake,
            ['Creates a skeleton serving the `%s` service once exported' % s.full_name,
             'with cp_skeleton_export(). Connect to its `handle-…` signals to',
             'implement the methods.'],
            returns='(transfer full) (type %s): a new #%s' % (k.camel, k.camel)))
        w('%s *' % n.camel)
        w('%s_skeleton_new (void)' % n.snake)
        w('{')
        w('  return g_object_new (%s, NULL);' % k.type_macro)
        w('}')
        w('')

    @staticmethod
    def kind_text(m):
        if m.client_streaming:
            return 'client-streaming'
        if m.server_streaming:
            return 'server-streaming'
        return 'unary'

    # -- enums ------------------------------------------------------------

    def enum_values(self, e):
        """[(C name, number, nick, proto name)] of a proto enum."""
        n = e.names
        candidates = sorted({pbc_camel_to_upper(e.desc.name),
                             camel_to_snake(e.desc.name).upper(),
                             n.obj}, key=len, reverse=True)
        out = []
        for v in e.desc.value:
            short = v.name
            for cand in candidates:
                if short.startswith(cand + '_') and len(short) > len(cand) + 1:
                    short = short[len(cand) + 1:]
                    break
            cname = '%s_%s' % (n.upper, short.upper())
            nick = short.lower().replace('_', '-')
            out.append((cname, v.number, nick, v.name))
        return out

    def case_values(self, o):
        cn = o.case_names
        out = [(cn.upper + '_NOT_SET', 0, 'not-set')]
        for f in o.fields:
            out.append(('%s_%s' % (cn.upper, f.ident.upper().rstrip('_')), f.number,
                        f.name.replace('_', '-')))
        return out

    # -- helpers ----------------------------------------------------------

    def decl(self, text):
        deco = self.params.get('decorator')
        return (deco + '\n' + text) if deco else text

    def type_comment(self, info):
        return c_comment(self.comments.get(tuple(info.path)))

    def field_comment(self, f):
        path = tuple(f.msg.info.path) + (2, f.index)
        return c_comment(self.comments.get(path))

    def api_ctype(self, f, elem=False):
        """C type of a single value in our API."""
        if f.type == FDP.TYPE_ENUM:
            return f.ref.names.camel
        if f.type == FDP.TYPE_STRING:
            return 'const char *'
        if f.type == FDP.TYPE_BYTES:
            return 'GBytes *'
        if f.type == FDP.TYPE_MESSAGE:
            return f.ref.names.camel + ' *'
        return f.scalar.ctype

    def pbc_elem_ctype(self, f):
        if f.type == FDP.TYPE_ENUM:
            return f.ref.pbc_c
        if f.type == FDP.TYPE_MESSAGE:
            return f.ref.pbc_c + ' *'
        return f.scalar.pbc_ctype

    # -- header -----------------------------------------------------------

    def referenced_headers(self):
        deps = set()
        for m in self.messages:
            for f in m.fields:
                refs = [f.ref] if f.ref else []
                if f.map_entry:
                    refs = []
                for r in refs:
                    if r.file is not self.file and not r.well_known:
                        deps.add(r.file.name)
        for s in self.services:
            for m in s.methods:
                for r in (m.input, m.output):
                    if r.file is not self.file and not r.well_known:
                        deps.add(r.file.name)
        return sorted(d[:-len('.proto')] + '.cp.h' for d in deps)

    def gen_header(self):
        out = []
        w = out.append
        w('/* %s.cp.h: generated by protoc-gen-cp from %s. DO NOT EDIT. */' % (self.stem, self.file.name))
        w('#pragma once')
        w('')
        w('#include <connectplugin.h>')
        if self.params.get('include'):
            w('#include "%s"' % self.params['include'])
        for h in self.referenced_headers():
            w('#include "%s"' % h)
        w('')
        w('G_BEGIN_DECLS')
        w('')
        for e in self.enums:
            n = e.names
            lines = self.type_comment(e) or []
            values = self.enum_values(e)
            params = [(v[0], '`%s` (%d)' % (v[3], v[1])) for v in values]
            body = lines + ([''] if lines else []) + ['The `%s` enum.' % e.full_name]
            out.extend(doc_block(n.camel, body, params))
            w('typedef enum {')
            for v in values:
                w('  %s = %d,' % (v[0], v[1]))
            w('} %s;' % n.camel)
            w('')
            w('#define %s (%s_get_type ())' % (n.type_macro, n.snake))
            w(self.decl('GType %s_get_type (void) G_GNUC_CONST;' % n.snake))
            w('')

        for m in self.messages:
            for o in m.real_oneofs:
                cn = o.case_names
                values = self.case_values(o)
                params = [(values[0][0], 'no member is set')]
                params += [(v[0], '`%s` is set' % f.name) for v, f in zip(values[1:], o.fields)]
                out.extend(doc_block(cn.camel, ['Which member of the `%s` oneof of `%s` is set.'
                                                % (o.name, m.full_name)], params))
                w('typedef enum {')
                for v in values:
                    w('  %s = %d,' % (v[0], v[1]))
                w('} %s;' % cn.camel)
                w('')
                w('#define %s (%s_get_type ())' % (cn.type_macro, cn.snake))
                w(self.decl('GType %s_get_type (void) G_GNUC_CONST;' % cn.snake))
                w('')

        # Every class first: accessors may use any message type of the file.
        for m in self.messages:
            n = m.names
            w('#define %s (%s_get_type ())' % (n.type_macro, n.snake))
            w(self.decl('G_DECLARE_FINAL_TYPE (%s, %s, %s, %s, CpMessage)'
                        % (n.camel, n.snake, n.module, n.obj)))
        if self.messages:
            w('')
        for m in self.messages:
            n = m.names
            w(self.decl('%s *%s_new (void);' % (n.camel, n.snake)))
            for proto in self.accessor_prototypes(m):
                w(self.decl(proto + ';'))
            w('')

        self.gen_services_header(out)

        w('G_END_DECLS')
        w('')
        return '\n'.join(out)

    def accessor_prototypes(self, m):
        """Prototypes of the accessors of @m, in declaration order."""
        n = m.names
        self_arg = '%s *self' % n.camel
        protos = []
        for f in m.fields:
            if not f.has_accessors:
                continue
            get = '%s_get_%s' % (n.snake, f.ident)
            set_ = '%s_set_%s' % (n.snake, f.ident)
            k = f.kind
            if k in ('scalar', 'enum', 'string', 'bytes', 'message'):
                protos.append('%s%s%s (%s)' % (self.api_ctype(f), '' if self.api_ctype(f).endswith('*') else ' ', get, self_arg))
                protos.append('void %s (%s, %s%s%s)' % (set_, self_arg, self.api_ctype(f),
                                                       '' if self.api_ctype(f).endswith('*') else ' ', f.ident))
            elif k in ('rep_scalar', 'rep_enum'):
                et = self.api_ctype(f)
                protos.append('const %s *%s (%s, gsize *n_values)' % (et, get, self_arg))
                protos.append('void %s (%s, const %s *values, gsize n_values)' % (set_, self_arg, et))
            elif k == 'rep_string':
                protos.append('GStrv %s (%s)' % (get, self_arg))
                protos.append('void %s (%s, const char * const *values)' % (set_, self_arg))
            elif k in ('rep_bytes', 'rep_message'):
                protos.append('GPtrArray *%s (%s)' % (get, self_arg))
                protos.append('void %s (%s, GPtrArray *values)' % (set_, self_arg))
            elif k == 'map_ss':
                protos.append('GHashTable *%s (%s)' % (get, self_arg))
                protos.append('void %s (%s, GHashTable *values)' % (set_, self_arg))
        for o in m.real_oneofs:
            protos.append('%s %s_get_%s_case (%s)' % (o.case_names.camel, n.snake, o.ident, self_arg))
            protos.append('void %s_clear_%s (%s)' % (n.snake, o.ident, self_arg))
        return protos

    # -- source -----------------------------------------------------------

    def gen_source(self):
        out = []
        w = out.append
        base = self.stem.rsplit('/', 1)[-1]
        w('/* %s.cp.c: generated by protoc-gen-cp from %s. DO NOT EDIT. */' % (self.stem, self.file.name))
        w('#include <math.h>')
        w('#include <stdlib.h>')
        w('#include <string.h>')
        w('#include <protobuf-c/protobuf-c.h>')
        w('')
        w('#include "%s.cp.h"' % base)
        w('#include "%s.pb-c.h"' % base)
        w('')
        w(HELPERS)
        for e in self.enums:
            self.gen_enum_type(out, e.names, self.enum_values(e))
        for m in self.messages:
            for o in m.real_oneofs:
                self.gen_enum_type(out, o.case_names, self.case_values(o))
        for m in self.messages:
            self.gen_message(out, m)
        self.gen_services_source(out)
        return '\n'.join(out) + '\n'

    def gen_enum_type(self, out, n, values):
        w = out.append
        w('GType')
        w('%s_get_type (void)' % n.snake)
        w('{')
        w('  static gsize type_id = 0;')
        w('')
        w('  if (g_once_init_enter (&type_id))')
        w('    {')
        w('      static const GEnumValue values[] = {')
        for v in values:
            w('        { %s, "%s", "%s" },' % (v[0], v[0], v[2]))
        w('        { 0, NULL, NULL }')
        w('      };')
        w('      GType id = g_enum_register_static (g_intern_static_string ("%s"), values);' % n.camel)
        w('')
        w('      g_once_init_leave (&type_id, id);')
        w('    }')
        w('  return type_id;')
        w('}')
        w('')

    def gen_message(self, out, m):
        w = out.append
        n = m.names
        pbc = m.info.pbc_c
        body = self.type_comment(m.info)
        if body:
            body = body + ['']
        body.append('The `%s` message.' % m.full_name)
        out.extend(doc_block(n.camel, body))
        w('struct _%s' % n.camel)
        w('{')
        w('  CpMessage parent_instance;')
        w('};')
        w('')
        w('G_DEFINE_FINAL_TYPE (%s, %s, CP_TYPE_MESSAGE)' % (n.camel, n.snake))
        w('')
        props = [f for f in m.fields if f.has_property]
        if props:
            w('enum {')
            w('  %s_PROP_0,' % n.upper)
            for f in props:
                w('  %s,' % f.prop_enum)
            w('  %s_N_PROPS' % n.upper)
            w('};')
            w('')
            w('static GParamSpec *%s_props[%s_N_PROPS];' % (n.snake, n.upper))
            w('')

        for o in m.real_oneofs:
            self.gen_oneof_helpers(out, m, o)
        for f in m.fields:
            if f.has_accessors:
                self.gen_accessors(out, m, f)
        for o in m.real_oneofs:
            self.gen_oneof_accessors(out, m, o)

        if props:
            w('static void')
            w('%s_get_property (GObject    *object,' % n.snake)
            w('%s guint       prop_id,' % (' ' * (len(n.snake + '_get_property') + 1)))
            w('%s GValue     *value,' % (' ' * (len(n.snake + '_get_property') + 1)))
            w('%s GParamSpec *pspec)' % (' ' * (len(n.snake + '_get_property') + 1)))
            w('{')
            w('  %s *self = %s (object);' % (n.camel, n.cast_macro))
            w('')
            w('  switch (prop_id)')
            w('    {')
            for f in props:
                get = '%s_get_%s (self)' % (n.snake, f.ident)
                w('    case %s:' % f.prop_enum)
                w('      ' + {
                    'scalar': 'g_value_set_%s (value, %s);' % (f.scalar.gvalue if f.scalar else '', get),
                    'enum': 'g_value_set_enum (value, %s);' % get,
                    'string': 'g_value_set_string (value, %s);' % get,
                    'bytes': 'g_value_take_boxed (value, %s);' % get,
                    'message': 'g_value_take_object (value, %s);' % get,
                    'rep_string': 'g_value_take_boxed (value, %s);' % get,
                    'map_ss': 'g_value_take_boxed (value, %s);' % get,
                }[f.kind])
                w('      break;')
            w('    default:')
            w('      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);')
            w('    }')
            w('}')
            w('')
            w('static void')
            w('%s_set_property (GObject      *object,' % n.snake)
            w('%s guint         prop_id,' % (' ' * (len(n.snake + '_set_property') + 1)))
            w('%s const GValue *value,' % (' ' * (len(n.snake + '_set_property') + 1)))
            w('%s GParamSpec   *pspec)' % (' ' * (len(n.snake + '_set_property') + 1)))
            w('{')
            w('  %s *self = %s (object);' % (n.camel, n.cast_macro))
            w('')
            w('  switch (prop_id)')
            w('    {')
            for f in props:
                set_ = '%s_set_%s (self, ' % (n.snake, f.ident)
                w('    case %s:' % f.prop_enum)
                w('      ' + set_ + {
                    'scalar': 'g_value_get_%s (value));' % (f.scalar.gvalue if f.scalar else ''),
                    'enum': 'g_value_get_enum (value));',
                    'string': 'g_value_get_string (value));',
                    'bytes': 'g_value_get_boxed (value));',
                    'message': 'g_value_get_object (value));',
                    'rep_string': 'g_value_get_boxed (value));',
                    'map_ss': 'g_value_get_boxed (value));',
                }[f.kind])
                w('      break;')
            w('    default:')
            w('      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);')
            w('    }')
            w('}')
            w('')

        w('static void')
        w('%s_class_init (%sClass *klass)' % (n.snake, n.camel))
        w('{')
        if props:
            w('  GObjectClass *object_class = G_OBJECT_CLASS (klass);')
            w('')
            w('  object_class->get_property = %s_get_property;' % n.snake)
            w('  object_class->set_property = %s_set_property;' % n.snake)
            w('')
        w('  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &%s);' % m.info.descriptor_symbol)
        for f in props:
            w('')
            body = self.field_comment(f)
            if body:
                body = body + ['']
            body.append('The `%s` field (%d, `%s`).' % (f.name, f.number, f.proto_type_name()))
            if f.oneof:
                body.append('Member of the `%s` oneof: setting it selects it.' % f.oneof.name)
            for line in doc_block('%s:%s' % (n.camel, f.prop), body):
                w('  ' + line if line else '')
            w('  %s_props[%s] =' % (n.snake, f.prop_enum))
            w('    %s;' % self.pspec(f))
        if props:
            w('')
            w('  g_object_class_install_properties (object_class, %s_N_PROPS, %s_props);'
              % (n.upper, n.snake))
        w('}')
        w('')
        w('static void')
        w('%s_init (%s *self)' % (n.snake, n.camel))
        w('{')
        w('}')
        w('')
        out.extend(doc_block('%s_new' % n.snake,
                             ['Creates a `%s` message with every field at its default.' % m.full_name],
                             returns='(transfer full): a new #%s' % n.camel))
        w('%s *' % n.camel)
        w('%s_new (void)' % n.snake)
        w('{')
        w('  return g_object_new (%s, NULL);' % n.type_macro)
        w('}')
        w('')

    def pspec(self, f):
        flags = 'G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS'
        name = '"%s", NULL, NULL' % f.prop
        k = f.kind
        if k == 'scalar':
            return 'g_param_spec_%s (%s, %s, %s)' % (f.scalar.pspec, name, PSPEC_RANGE[f.scalar.pspec], flags)
        if k == 'enum':
            default = f.ref.desc.value[0].number if f.ref.desc.value else 0
            return 'g_param_spec_enum (%s, %s, %d, %s)' % (name, f.ref.names.type_macro, default, flags)
        if k == 'string':
            return 'g_param_spec_string (%s, %s, %s)' % (name, 'NULL' if f.oneof else '""', flags)
        if k == 'bytes':
            return 'g_param_spec_boxed (%s, G_TYPE_BYTES, %s)' % (name, flags)
        if k == 'message':
            return 'g_param_spec_object (%s, %s, %s)' % (name, f.ref.names.type_macro, flags)
        if k == 'rep_string':
            return 'g_param_spec_boxed (%s, G_TYPE_STRV, %s)' % (name, flags)
        if k == 'map_ss':
            return 'g_param_spec_boxed (%s, G_TYPE_HASH_TABLE, %s)' % (name, flags)
        raise AssertionError(k)

    # -- accessors --------------------------------------------------------

    def gen_oneof_helpers(self, out, m, o):
        w = out.append
        pbc = m.info.pbc_c
        w('/* Frees the selected member of the `%s` oneof and unselects it. */' % o.name)
        w('static void')
        w('%s_%s_free_members (%s *m)' % (m.names.snake, o.ident, pbc))
        w('{')
        w('  switch ((int) m->%s)' % o.pbc_case_member)
        w('    {')
        for f in o.fields:
            if f.kind == 'string':
                w('    case %d:' % f.number)
                w('      cp_gen_free_string (m->%s);' % f.pbc_member)
                w('      break;')
            elif f.kind == 'bytes':
                w('    case %d:' % f.number)
                w('      free (m->%s.data);' % f.pbc_member)
                w('      break;')
            elif f.kind == 'message':
                w('    case %d:' % f.number)
                w('      if (m->%s != NULL)' % f.pbc_member)
                w('        protobuf_c_message_free_unpacked ((ProtobufCMessage *) m->%s, NULL);' % f.pbc_member)
                w('      break;')
        w('    default:')
        w('      break;')
        w('    }')
        w('  m->%s = 0;' % o.pbc_case_member)
        w('}')
        w('')

    def gen_accessors(self, out, m, f):
        w = out.append
        n = m.names
        pbc = m.info.pbc_c
        get = '%s_get_%s' % (n.snake, f.ident)
        set_ = '%s_set_%s' % (n.snake, f.ident)
        mem = 'm->' + f.pbc_member
        selfdoc = ('self', 'a #%s' % n.camel)
        header = '  %s *m = cp_message_get_c_message (CP_MESSAGE (self));' % pbc
        what = 'the `%s` field' % f.name
        k = f.kind
        selected = None
        if f.oneof:
            selected = 'm->%s == %d' % (f.oneof.pbc_case_member, f.number)

        def notify():
            w('  g_object_notify_by_pspec (G_OBJECT (self), %s_props[%s]);' % (n.snake, f.prop_enum))

        def select_oneof():
            w('  if (!(%s))' % selected)
            w('    %s_%s_free_members (m);' % (n.snake, f.oneof.ident))

        oneof_note = []
        if f.oneof:
            oneof_note = ['', '%s is a member of the `%s` oneof.' % (what[0].upper() + what[1:], f.oneof.name)]

        if k in ('scalar', 'enum'):
            ct = self.api_ctype(f)
            zero = f.scalar.default if f.scalar else '0'
            # getter
            out.extend(doc_block(get, ['Gets %s.' % what] + oneof_note, [selfdoc],
                                 returns='the value%s' % (', or the default when another member is set' if f.oneof else '')))
            w('%s' % ct)
            w('%s (%s *self)' % (get, n.camel))
            w('{')
            w('  %s *m;' % pbc)
            w('')
            w('  g_return_val_if_fail (%s (self), %s);' % (n.is_macro, zero))
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            val = '(%s) %s' % (ct, mem) if k == 'enum' else mem
            if f.type == FDP.TYPE_BOOL:
                val = '%s != 0' % mem
            if selected:
                w('  return (%s) ? %s : %s;' % (selected, val, zero))
            else:
                w('  return %s;' % val)
            w('}')
            w('')
            # setter
            out.extend(doc_block(set_, ['Sets %s.' % what] +
                                 (['', 'This selects it in the `%s` oneof.' % f.oneof.name] if f.oneof else []),
                                 [selfdoc, (f.ident, 'the new value')]))
            w('void')
            w('%s (%s *self,' % (set_, n.camel))
            w('%s %s %s)' % (' ' * (len(set_) + 1), ct, f.ident))
            w('{')
            w('  %s *m;' % pbc)
            w('')
            w('  g_return_if_fail (%s (self));' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            store = f.ident
            if k == 'enum':
                store = '(%s) %s' % (f.ref.pbc_c, f.ident)
            elif f.type == FDP.TYPE_BOOL:
                store = '(%s != FALSE)' % f.ident
            if selected:
                w('  if ((%s) && %s == %s)' % (selected, mem, store))
                w('    return;')
                select_oneof()
                w('  %s = %s;' % (mem, store))
                w('  m->%s = %d;' % (f.oneof.pbc_case_member, f.number))
            else:
                w('  if (%s == %s)' % (mem, store))
                w('    return;')
                w('  %s = %s;' % (mem, store))
            notify()
            w('}')
            w('')

        elif k == 'string':
            out.extend(doc_block(get, ['Gets %s.' % what] + oneof_note, [selfdoc],
                                 returns=('(transfer none) (nullable): the value, valid until the field '
                                          'changes, or %NULL when another member is set' if f.oneof else
                                          '(transfer none): the value, valid until the field changes')))
            w('const char *')
            w('%s (%s *self)' % (get, n.camel))
            w('{')
            w('  %s *m;' % pbc)
            w('')
            w('  g_return_val_if_fail (%s (self), NULL);' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            if selected:
                w('  if (!(%s))' % selected)
                w('    return NULL;')
            w('  return %s != NULL ? %s : "";' % (mem, mem))
            w('}')
            w('')
            out.extend(doc_block(set_, ['Sets %s.' % what] +
                                 (['', 'A non-%%NULL value selects it in the `%s` oneof; %%NULL '
                                   'clears the oneof if it is selected.' % f.oneof.name] if f.oneof else
                                  ['', '%NULL is the same as the empty string.']),
                                 [selfdoc, (f.ident, '(nullable): the new value, valid UTF-8')]))
            w('void')
            w('%s (%s *self,' % (set_, n.camel))
            w('%s const char *%s)' % (' ' * (len(set_) + 1), f.ident))
            w('{')
            w('  %s *m;' % pbc)
            w('')
            w('  g_return_if_fail (%s (self));' % n.is_macro)
            w('  g_return_if_fail (%s == NULL || g_utf8_validate (%s, -1, NULL));' % (f.ident, f.ident))
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            if selected:
                w('  if (%s == NULL)' % f.ident)
                w('    {')
                w('      if (!(%s))' % selected)
                w('        return;')
                w('      %s_%s_free_members (m);' % (n.snake, f.oneof.ident))
                w('    }')
                w('  else')
                w('    {')
                w('      char *copy;')
                w('')
                w('      if ((%s) && g_strcmp0 (%s, %s) == 0)' % (selected, mem, f.ident))
                w('        return;')
                w('      copy = g_strdup (%s);' % f.ident)
                w('      %s_%s_free_members (m);' % (n.snake, f.oneof.ident))
                w('      %s = copy;' % mem)
                w('      m->%s = %d;' % (f.oneof.pbc_case_member, f.number))
                w('    }')
            else:
                w('  if (%s == NULL)' % f.ident)
                w('    %s = "";' % f.ident)
                w('  if (g_strcmp0 (%s, %s) == 0)' % (mem, f.ident))
                w('    return;')
                w('  cp_gen_free_string (%s);' % mem)
                w('  %s = %s[0] != \'\\0\' ? g_strdup (%s) : (char *) protobuf_c_empty_string;'
                  % (mem, f.ident, f.ident))
            notify()
            w('}')
            w('')

        elif k == 'bytes':
            out.extend(doc_block(get, ['Gets a copy of %s.' % what] + oneof_note, [selfdoc],
                                 returns=('(transfer full) (nullable): the value, or %NULL when another '
                                          'member is set' if f.oneof else '(transfer full): the value')))
            w('GBytes *')
            w('%s (%s *self)' % (get, n.camel))
            w('{')
            w('  %s *m;' % pbc)
            w('')
            w('  g_return_val_if_fail (%s (self), NULL);' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            if selected:
                w('  if (!(%s))' % selected)
                w('    return NULL;')
            w('  return g_bytes_new (%s.data, %s.len);' % (mem, mem))
            w('}')
            w('')
            out.extend(doc_block(set_, ['Sets %s to a copy of @%s.' % (what, f.ident)] +
                                 (['', 'A non-%%NULL value selects it in the `%s` oneof; %%NULL '
                                   'clears the oneof if it is selected.' % f.oneof.name] if f.oneof else
                                  ['', '%NULL is the same as empty bytes.']),
                                 [selfdoc, (f.ident, '(nullable): the new value')]))
            w('void')
            w('%s (%s *self,' % (set_, n.camel))
            w('%s GBytes *%s)' % (' ' * (len(set_) + 1), f.ident))
            w('{')
            w('  %s *m;' % pbc)
            w('  ProtobufCBinaryData copy = { 0, NULL };')
            w('')
            w('  g_return_if_fail (%s (self));' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            if selected:
                w('  if (%s == NULL && !(%s))' % (f.ident, selected))
                w('    return;')
            w('  if (%s != NULL)' % f.ident)
            w('    copy = cp_gen_bytes_dup (%s);' % f.ident)
            if selected:
                w('  %s_%s_free_members (m);' % (n.snake, f.oneof.ident))
                w('  if (%s != NULL)' % f.ident)
                w('    {')
                w('      %s = copy;' % mem)
                w('      m->%s = %d;' % (f.oneof.pbc_case_member, f.number))
                w('    }')
            else:
                w('  free (%s.data);' % mem)
                w('  %s = copy;' % mem)
            notify()
            w('}')
            w('')

        elif k == 'message':
            rn = f.ref.names
            out.extend(doc_block(get, ['Gets a copy of %s.' % what,
                                       '',
                                       'Changing the copy does not change @self: set it back with',
                                       '%s().' % set_] + oneof_note, [selfdoc],
                                 returns='(transfer full) (nullable): a copy of the value, or %NULL when unset'))
            w('%s *' % rn.camel)
            w('%s (%s *self)' % (get, n.camel))
            w('{')
            w('  %s *m;' % pbc)
            w('')
            w('  g_return_val_if_fail (%s (self), NULL);' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            cond = '%s == NULL' % mem
            if selected:
                cond = '!(%s) || %s' % (selected, cond)
            w('  if (%s)' % cond)
            w('    return NULL;')
            w('  return cp_gen_wrap (%s, (const ProtobufCMessage *) %s);' % (rn.type_macro, mem))
            w('}')
            w('')
            out.extend(doc_block(set_, ['Sets %s to a copy of @%s.' % (what, f.ident)] +
                                 (['', 'A non-%%NULL value selects it in the `%s` oneof; %%NULL '
                                   'clears the oneof if it is selected.' % f.oneof.name] if f.oneof else
                                  ['', '%NULL unsets the field.']),
                                 [selfdoc, (f.ident, '(nullable): the new value')]))
            w('void')
            w('%s (%s *self,' % (set_, n.camel))
            w('%s %s *%s)' % (' ' * (len(set_) + 1), rn.camel, f.ident))
            w('{')
            w('  %s *m;' % pbc)
            w('  ProtobufCMessage *copy = NULL;')
            w('')
            w('  g_return_if_fail (%s (self));' % n.is_macro)
            w('  g_return_if_fail (%s == NULL || %s (%s));' % (f.ident, rn.is_macro, f.ident))
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            if selected:
                w('  if (%s == NULL && !(%s))' % (f.ident, selected))
                w('    return;')
            w('  /* copy first: @%s may be a part of @self */' % f.ident)
            w('  if (%s != NULL)' % f.ident)
            w('    copy = cp_gen_dup (cp_message_get_c_message (CP_MESSAGE (%s)), &%s);'
              % (f.ident, f.ref.descriptor_symbol))
            if selected:
                w('  %s_%s_free_members (m);' % (n.snake, f.oneof.ident))
                w('  if (copy != NULL)')
                w('    {')
                w('      %s = (%s *) copy;' % (mem, f.ref.pbc_c))
                w('      m->%s = %d;' % (f.oneof.pbc_case_member, f.number))
                w('    }')
            else:
                w('  if (%s != NULL)' % mem)
                w('    protobuf_c_message_free_unpacked ((ProtobufCMessage *) %s, NULL);' % mem)
                w('  %s = (%s *) copy;' % (mem, f.ref.pbc_c))
            notify()
            w('}')
            w('')

        elif k in ('rep_scalar', 'rep_enum'):
            et = self.api_ctype(f)
            pt = self.pbc_elem_ctype(f)
            out.extend(doc_block(get, ['Gets the values of %s.' % what],
                                 [selfdoc, ('n_values', '(out) (optional): return location for the number of values')],
                                 returns='(array length=n_values) (transfer none) (nullable): the values, '
                                         'valid until the field changes'))
            w('const %s *' % et)
            w('%s (%s *self,' % (get, n.camel))
            w('%s gsize *n_values)' % (' ' * (len(get) + 1)))
            w('{')
            w('  %s *m;' % pbc)
            w('')
            w('  g_return_val_if_fail (%s (self), NULL);' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  if (n_values != NULL)')
            w('    *n_values = m->n_%s;' % f.pbc_member)
            w('  return (const %s *) %s;' % (et, mem))
            w('}')
            w('')
            out.extend(doc_block(set_, ['Replaces the values of %s with a copy of @values.' % what],
                                 [selfdoc, ('values', '(array length=n_values) (nullable): the new values'),
                                  ('n_values', 'the number of values')]))
            w('void')
            w('%s (%s *self,' % (set_, n.camel))
            w('%s const %s *values,' % (' ' * (len(set_) + 1), et))
            w('%s gsize n_values)' % (' ' * (len(set_) + 1)))
            w('{')
            w('  %s *m;' % pbc)
            w('')
            w('  g_return_if_fail (%s (self));' % n.is_macro)
            w('  g_return_if_fail (values != NULL || n_values == 0);')
            w('  G_STATIC_ASSERT (sizeof (%s) == sizeof (%s));' % (et, pt))
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  free (%s);' % mem)
            w('  %s = n_values > 0 ? g_memdup2 (values, n_values * sizeof (%s)) : NULL;' % (mem, pt))
            if f.type == FDP.TYPE_BOOL:
                w('  for (gsize i = 0; i < n_values; i++)')
                w('    %s[i] = %s[i] != 0;' % (mem, mem))
            w('  m->n_%s = n_values;' % f.pbc_member)
            w('}')
            w('')

        elif k == 'rep_string':
            out.extend(doc_block(get, ['Gets a copy of the values of %s.' % what], [selfdoc],
                                 returns='(transfer full): the values'))
            w('GStrv')
            w('%s (%s *self)' % (get, n.camel))
            w('{')
            w('  %s *m;' % pbc)
            w('  GStrv strv;')
            w('')
            w('  g_return_val_if_fail (%s (self), NULL);' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  strv = g_new0 (char *, m->n_%s + 1);' % f.pbc_member)
            w('  for (size_t i = 0; i < m->n_%s; i++)' % f.pbc_member)
            w('    strv[i] = g_strdup (%s[i] != NULL ? %s[i] : "");' % (mem, mem))
            w('  return strv;')
            w('}')
            w('')
            out.extend(doc_block(set_, ['Replaces the values of %s with a copy of @values.' % what],
                                 [selfdoc, ('values', '(array zero-terminated=1) (nullable): the new values, '
                                            'valid UTF-8')]))
            w('void')
            w('%s (%s *self,' % (set_, n.camel))
            w('%s const char * const *values)' % (' ' * (len(set_) + 1)))
            w('{')
            w('  %s *m;' % pbc)
            w('  gsize n = values != NULL ? g_strv_length ((GStrv) values) : 0;')
            w('  char **copy = NULL;')
            w('')
            w('  g_return_if_fail (%s (self));' % n.is_macro)
            w('  for (gsize i = 0; i < n; i++)')
            w('    g_return_if_fail (g_utf8_validate (values[i], -1, NULL));')
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  if (n > 0)')
            w('    copy = g_new (char *, n);')
            w('  for (gsize i = 0; i < n; i++)')
            w('    copy[i] = g_strdup (values[i]);')
            w('  for (size_t i = 0; i < m->n_%s; i++)' % f.pbc_member)
            w('    free (%s[i]);' % mem)
            w('  free (%s);' % mem)
            w('  %s = copy;' % mem)
            w('  m->n_%s = n;' % f.pbc_member)
            notify()
            w('}')
            w('')

        elif k == 'rep_bytes':
            out.extend(doc_block(get, ['Gets a copy of the values of %s.' % what], [selfdoc],
                                 returns='(transfer container) (element-type GBytes): the values; the array frees them'))
            w('GPtrArray *')
            w('%s (%s *self)' % (get, n.camel))
            w('{')
            w('  %s *m;' % pbc)
            w('  GPtrArray *values;')
            w('')
            w('  g_return_val_if_fail (%s (self), NULL);' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  values = g_ptr_array_new_full (m->n_%s, (GDestroyNotify) g_bytes_unref);' % f.pbc_member)
            w('  for (size_t i = 0; i < m->n_%s; i++)' % f.pbc_member)
            w('    g_ptr_array_add (values, g_bytes_new (%s[i].data, %s[i].len));' % (mem, mem))
            w('  return values;')
            w('}')
            w('')
            out.extend(doc_block(set_, ['Replaces the values of %s with copies of @values.' % what],
                                 [selfdoc, ('values', '(element-type GBytes) (nullable): the new values')]))
            w('void')
            w('%s (%s *self,' % (set_, n.camel))
            w('%s GPtrArray *values)' % (' ' * (len(set_) + 1)))
            w('{')
            w('  %s *m;' % pbc)
            w('  gsize n = values != NULL ? values->len : 0;')
            w('  ProtobufCBinaryData *copy = NULL;')
            w('')
            w('  g_return_if_fail (%s (self));' % n.is_macro)
            w('  for (gsize i = 0; i < n; i++)')
            w('    g_return_if_fail (g_ptr_array_index (values, i) != NULL);')
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  if (n > 0)')
            w('    copy = g_new (ProtobufCBinaryData, n);')
            w('  for (gsize i = 0; i < n; i++)')
            w('    copy[i] = cp_gen_bytes_dup (g_ptr_array_index (values, i));')
            w('  for (size_t i = 0; i < m->n_%s; i++)' % f.pbc_member)
            w('    free (%s[i].data);' % mem)
            w('  free (%s);' % mem)
            w('  %s = copy;' % mem)
            w('  m->n_%s = n;' % f.pbc_member)
            w('}')
            w('')

        elif k == 'rep_message':
            rn = f.ref.names
            out.extend(doc_block(get, ['Gets copies of the values of %s.' % what], [selfdoc],
                                 returns='(transfer container) (element-type %s): the values; the array unrefs them' % rn.camel))
            w('GPtrArray *')
            w('%s (%s *self)' % (get, n.camel))
            w('{')
            w('  %s *m;' % pbc)
            w('  GPtrArray *values;')
            w('')
            w('  g_return_val_if_fail (%s (self), NULL);' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  values = g_ptr_array_new_full (m->n_%s, g_object_unref);' % f.pbc_member)
            w('  for (size_t i = 0; i < m->n_%s; i++)' % f.pbc_member)
            w('    g_ptr_array_add (values, cp_gen_wrap (%s, (const ProtobufCMessage *) %s[i]));'
              % (rn.type_macro, mem))
            w('  return values;')
            w('}')
            w('')
            out.extend(doc_block(set_, ['Replaces the values of %s with copies of @values.' % what],
                                 [selfdoc, ('values', '(element-type %s) (nullable): the new values' % rn.camel)]))
            w('void')
            w('%s (%s *self,' % (set_, n.camel))
            w('%s GPtrArray *values)' % (' ' * (len(set_) + 1)))
            w('{')
            w('  %s *m;' % pbc)
            w('  gsize n = values != NULL ? values->len : 0;')
            w('  %s **copy = NULL;' % f.ref.pbc_c)
            w('')
            w('  g_return_if_fail (%s (self));' % n.is_macro)
            w('  for (gsize i = 0; i < n; i++)')
            w('    g_return_if_fail (%s (g_ptr_array_index (values, i)));' % rn.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  /* copy first: @values may hold parts of @self */')
            w('  if (n > 0)')
            w('    copy = g_new (%s *, n);' % f.ref.pbc_c)
            w('  for (gsize i = 0; i < n; i++)')
            w('    copy[i] = cp_gen_dup (cp_message_get_c_message (g_ptr_array_index (values, i)), &%s);'
              % f.ref.descriptor_symbol)
            w('  for (size_t i = 0; i < m->n_%s; i++)' % f.pbc_member)
            w('    protobuf_c_message_free_unpacked ((ProtobufCMessage *) %s[i], NULL);' % mem)
            w('  free (%s);' % mem)
            w('  %s = copy;' % mem)
            w('  m->n_%s = n;' % f.pbc_member)
            w('}')
            w('')

        elif k == 'map_ss':
            entry = f.map_entry
            kmem = pbc_field_name(entry.desc.field[0].name)
            vmem = pbc_field_name(entry.desc.field[1].name)
            out.extend(doc_block(get, ['Gets a copy of the entries of %s.' % what], [selfdoc],
                                 returns='(transfer container) (element-type utf8 utf8): the entries; the table frees them'))
            w('GHashTable *')
            w('%s (%s *self)' % (get, n.camel))
            w('{')
            w('  %s *m;' % pbc)
            w('  GHashTable *values;')
            w('')
            w('  g_return_val_if_fail (%s (self), NULL);' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);')
            w('  for (size_t i = 0; i < m->n_%s; i++)' % f.pbc_member)
            w('    {')
            w('      const %s *e = %s[i];' % (entry.pbc_c, mem))
            w('')
            w('      g_hash_table_insert (values, g_strdup (e->%s != NULL ? e->%s : ""),' % (kmem, kmem))
            w('                           g_strdup (e->%s != NULL ? e->%s : ""));' % (vmem, vmem))
            w('    }')
            w('  return values;')
            w('}')
            w('')
            out.extend(doc_block(set_, ['Replaces the entries of %s with copies of @values.' % what,
                                        '', 'Entries are stored sorted by key, so the encoding is deterministic.'],
                                 [selfdoc, ('values', '(element-type utf8 utf8) (nullable): the new entries, '
                                            'valid UTF-8')]))
            w('void')
            w('%s (%s *self,' % (set_, n.camel))
            w('%s GHashTable *values)' % (' ' * (len(set_) + 1)))
            w('{')
            w('  %s *m;' % pbc)
            w('  g_autofree const char **keys = NULL;')
            w('  guint n = 0;')
            w('  %s **copy = NULL;' % entry.pbc_c)
            w('')
            w('  g_return_if_fail (%s (self));' % n.is_macro)
            w('')
            w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
            w('  if (values != NULL)')
            w('    keys = (const char **) g_hash_table_get_keys_as_array (values, &n);')
            w('  for (guint i = 0; i < n; i++)')
            w('    {')
            w('      const char *value = g_hash_table_lookup (values, keys[i]);')
            w('')
            w('      g_return_if_fail (keys[i] != NULL && g_utf8_validate (keys[i], -1, NULL));')
            w('      g_return_if_fail (value == NULL || g_utf8_validate (value, -1, NULL));')
            w('    }')
            w('  if (n > 0)')
            w('    {')
            w('      qsort (keys, n, sizeof (char *), cp_gen_strcmp_p);')
            w('      copy = g_new (%s *, n);' % entry.pbc_c)
            w('    }')
            w('  for (guint i = 0; i < n; i++)')
            w('    {')
            w('      const char *value = g_hash_table_lookup (values, keys[i]);')
            w('')
            w('      copy[i] = g_new (%s, 1);' % entry.pbc_c)
            w('      protobuf_c_message_init (&%s, copy[i]);' % entry.descriptor_symbol)
            w('      copy[i]->%s = g_strdup (keys[i]);' % kmem)
            w('      copy[i]->%s = g_strdup (value != NULL ? value : "");' % vmem)
            w('    }')
            w('  for (size_t i = 0; i < m->n_%s; i++)' % f.pbc_member)
            w('    protobuf_c_message_free_unpacked ((ProtobufCMessage *) %s[i], NULL);' % mem)
            w('  free (%s);' % mem)
            w('  %s = copy;' % mem)
            w('  m->n_%s = n;' % f.pbc_member)
            notify()
            w('}')
            w('')

    def gen_oneof_accessors(self, out, m, o):
        w = out.append
        n = m.names
        pbc = m.info.pbc_c
        cn = o.case_names
        selfdoc = ('self', 'a #%s' % n.camel)
        name = '%s_get_%s_case' % (n.snake, o.ident)
        out.extend(doc_block(name, ['Gets which member of the `%s` oneof is set.' % o.name], [selfdoc],
                             returns='the member that is set, or %%%s_NOT_SET' % cn.upper))
        w(cn.camel)
        w('%s (%s *self)' % (name, n.camel))
        w('{')
        w('  %s *m;' % pbc)
        w('')
        w('  g_return_val_if_fail (%s (self), %s_NOT_SET);' % (n.is_macro, cn.upper))
        w('')
        w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
        w('  return (%s) m->%s;' % (cn.camel, o.pbc_case_member))
        w('}')
        w('')
        name = '%s_clear_%s' % (n.snake, o.ident)
        out.extend(doc_block(name, ['Unsets the member of the `%s` oneof that is set, if any.' % o.name],
                             [selfdoc]))
        w('void')
        w('%s (%s *self)' % (name, n.camel))
        w('{')
        w('  %s *m;' % pbc)
        w('  int was;')
        w('')
        w('  g_return_if_fail (%s (self));' % n.is_macro)
        w('')
        w('  m = cp_message_get_c_message (CP_MESSAGE (self));')
        w('  was = (int) m->%s;' % o.pbc_case_member)
        w('  %s_%s_free_members (m);' % (n.snake, o.ident))
        w('  switch (was)')
        w('    {')
        for f in o.fields:
            if f.has_property:
                w('    case %d:' % f.number)
                w('      g_object_notify_by_pspec (G_OBJECT (self), %s_props[%s]);' % (n.snake, f.prop_enum))
                w('      break;')
        w('    default:')
        w('      break;')
        w('    }')
        w('}')
        w('')


HELPERS = r'''/* Deep copy of @src as a message of @descriptor (the same protobuf type,
 * possibly compiled twice), malloc'd as protobuf-c expects. */
static G_GNUC_UNUSED gpointer
cp_gen_dup (gconstpointer                     src,
            const ProtobufCMessageDescriptor *descriptor)
{
  const ProtobufCMessage *message = src;
  size_t size = protobuf_c_message_get_packed_size (message);
  g_autofree uint8_t *buf = g_malloc (size > 0 ? size : 1);
  ProtobufCMessage *copy;

  protobuf_c_message_pack (message, buf);
  copy = protobuf_c_message_unpack (descriptor, NULL, size, buf);
  if (copy == NULL)
    {
      copy = g_malloc (descriptor->sizeof_message);
      protobuf_c_message_init (descriptor, copy);
    }
  return copy;
}

/* A new message object of @type holding a copy of @src. */
static G_GNUC_UNUSED gpointer
cp_gen_wrap (GType                   type,
             const ProtobufCMessage *src)
{
  CpMessageClass *klass = g_type_class_ref (type);
  CpMessage *message;

  message = cp_message_new_take (type, cp_gen_dup (src, cp_message_class_get_descriptor (klass)));
  g_type_class_unref (klass);
  return message;
}

static G_GNUC_UNUSED void
cp_gen_free_string (char *s)
{
  if (s != NULL && s != protobuf_c_empty_string)
    free (s);
}

static G_GNUC_UNUSED ProtobufCBinaryData
cp_gen_bytes_dup (GBytes *bytes)
{
  ProtobufCBinaryData b = { 0, NULL };
  gsize len = 0;
  gconstpointer data = g_bytes_get_data (bytes, &len);

  if (len > 0)
    {
      b.data = g_memdup2 (data, len);
      b.len = len;
    }
  return b;
}

static G_GNUC_UNUSED int
cp_gen_strcmp_p (const void *a,
                 const void *b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}
'''


def parse_parameter(parameter):
    params = {}
    for item in filter(None, (p.strip() for p in parameter.split(','))):
        key, sep, value = item.partition('=')
        if not sep or key not in ('prefix', 'decorator', 'include'):
            raise GeneratorError('unknown parameter "%s" (known: prefix=Name, decorator=MACRO, '
                                 'include=FILE.h)' % item)
        params[key] = value
    if 'prefix' in params and not re.match(r'^[A-Z][A-Za-z0-9]*$', params['prefix']):
        raise GeneratorError('prefix "%s" must be CamelCase, like Kv or MyApp' % params['prefix'])
    return params


def generate(request):
    response = plugin_pb2.CodeGeneratorResponse()
    try:
        params = parse_parameter(request.parameter)
        model = Model(request, params)
        idents = Identifiers()
        gens = []
        for name in request.file_to_generate:
            gens.append(FileGenerator(model, model.files[name], idents))
        for g in gens:
            for warning in g.warnings():
                print('protoc-gen-cp: warning: ' + warning, file=sys.stderr)
        for g in gens:
            header = response.file.add()
            header.name = g.stem + '.cp.h'
            header.content = g.gen_header()
            source = response.file.add()
            source.name = g.stem + '.cp.c'
            source.content = g.gen_source()
    except GeneratorError as e:
        response.Clear()
        response.error = str(e)
    return response


def main():
    request = plugin_pb2.CodeGeneratorRequest()
    request.ParseFromString(sys.stdin.buffer.read())
    response = generate(request)
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == '__main__':
    sys.exit(main())
