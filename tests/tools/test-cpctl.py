#!/usr/bin/python3
# test-cpctl.py: cpctl against real servers
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Usage: test-cpctl.py CPCTL KV_PLUGIN TEST_SERVER DATA_DIR
#
# The KV example plugin (kv.v1.KVService, a connectplugin server with
# health) and cpctl-test-server (a method of each kind on
# google.protobuf.Struct) are started here on 127.0.0.1 and stopped by PID.

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

CPCTL, KV_PLUGIN, TEST_SERVER, DATA = sys.argv[1:5]
del sys.argv[1:5]


def start(argv, env=None):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    url = proc.stdout.readline().strip()
    if not url.startswith('http'):
        proc.kill()
        raise RuntimeError('%s did not start: %r' % (argv[0], url))
    return proc, url


def cpctl(*args, stdin=None, timeout=30, env=None):
    return subprocess.run([CPCTL, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


# TLS in a process built with ASan: once glib-networking's GnuTLS threads ran,
# LeakSanitizer's tracer crashes at exit (its own fault, not a leak report;
# tests/http/meson.build has the same for test-http-tls), so the cpctl runs
# over TLS keep ASan's memory checks but not its leak detection. No effect
# on a build without ASan.
TLS_ENV = dict(os.environ, ASAN_OPTIONS='detect_leaks=0:abort_on_error=1')


def cpctl_tls(*args):
    return cpctl(*args, env=TLS_ENV)


class Cpctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kv, cls.kv_url = start([KV_PLUGIN, '--listen', '127.0.0.1:0', '--reflection'])
        cls.test, cls.test_url = start([TEST_SERVER])

    @classmethod
    def tearDownClass(cls):
        for proc in (cls.kv, cls.test):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def assert_ok(self, result):
        self.assertEqual(result.returncode, 0, result.stderr)

    # plugins

    def test_plugins(self):
        r = cpctl('plugins', self.kv_url)
        self.assert_ok(r)
        self.assertIn('kv 1.0.0', r.stdout)
        self.assertIn('path: kv.v1.KVService', r.stdout)
        self.assertIn('provides: kv', r.stdout)

    def test_plugins_json_by_name(self):
        r = cpctl('plugins', '--json', self.kv_url, 'kv', 'absent')
        self.assert_ok(r)
        response = json.loads(r.stdout)
        self.assertEqual([p['name'] for p in response['plugins']], ['kv'])
        self.assertEqual(response['coreProtocolVersion'], 1)

    # health

    def test_health(self):
        r = cpctl('health', self.kv_url)
        self.assert_ok(r)
        self.assertEqual(r.stdout.strip(), 'SERVING')
        r = cpctl('health', '--json', self.kv_url, 'kv.v1.KVService')
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout), {'status': 'SERVING_STATUS_SERVING'})

    def test_health_unknown_service(self):
        r = cpctl('health', self.kv_url, 'no.such.Service')
        self.assertNotEqual(r.returncode, 0)

    def test_health_watch(self):
        proc = subprocess.Popen([CPCTL, 'health', '--watch', self.kv_url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(proc.stdout.readline().strip(), 'SERVING')
            # Still following: no exit after the first report.
            time.sleep(0.3)
            self.assertIsNone(proc.poll())
        finally:
            proc.kill()
            proc.wait()

    # describe (gRPC server reflection)

    def test_describe(self):
        r = cpctl('describe', self.kv_url)
        self.assert_ok(r)
        self.assertEqual(r.stdout.split(), ['connectplugin.health.v1.HealthService',
                                            'connectplugin.v1.HandshakeService',
                                            'connectplugin.v1.PluginControl',
                                            'grpc.reflection.v1.ServerReflection',
                                            'kv.v1.KVService'])
        # every service listed can be described (buf curl --list-methods needs it)
        for service in r.stdout.split():
            self.assert_ok(cpctl('describe', self.kv_url, service))
        r = cpctl('describe', self.kv_url, 'kv.v1.KVService')
        self.assert_ok(r)
        self.assertEqual(r.stdout, 'service kv.v1.KVService {\n'
                         '  rpc Get(kv.v1.GetRequest) returns (kv.v1.GetResponse);\n'
                         '  rpc Put(kv.v1.PutRequest) returns (kv.v1.PutResponse);\n'
                         '  rpc Delete(kv.v1.DeleteRequest) returns (kv.v1.DeleteResponse);\n'
                         '  rpc Watch(kv.v1.WatchRequest) returns (stream kv.v1.WatchEvent);\n'
                         '}\n')

    def test_describe_errors(self):
        r = cpctl('describe', self.kv_url, 'no.such.Service')
        self.assertEqual(r.returncode, 1)
        self.assertIn('not_found', r.stderr)
        r = cpctl('describe', self.kv_url, 'kv.v1.GetRequest')
        self.assertEqual(r.returncode, 1)
        self.assertIn('not a service', r.stderr)
        # A server without reflection (v1, then v1alpha, both unimplemented).
        r = cpctl('describe', self.test_url)
        self.assertEqual(r.returncode, 1)
        self.assertIn('does not offer gRPC reflection', r.stderr)

    # call: unary

    def test_call_unary(self):
        self.assert_ok(cpctl('call', self.kv_url, 'kv.v1.KVService/Put',
                             '{"key": "cpctl", "value": "aGk="}'))
        r = cpctl('call', self.kv_url, '/kv.v1.KVService/Get', '{"key": "cpctl"}')
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout), {'value': 'aGk=', 'found': True})

    def test_call_headers(self):
        r = cpctl('-H', 'X-Echo: hello there', 'call', self.test_url, 'cpctl.test.v1.Test/Echo',
                  '{"a": [1, "two"]}')
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout), {'echo': {'a': [1, 'two']}, 'header': 'hello there'})

    def test_call_errors(self):
        r = cpctl('call', self.kv_url, 'kv.v1.KVService/Get', '{"key": 5}')
        self.assertEqual(r.returncode, 1)
        self.assertIn('invalid_argument', r.stderr)
        r = cpctl('call', self.kv_url, 'kv.v1.KVService/Nope', '{}')
        self.assertEqual(r.returncode, 1)
        self.assertIn('unimplemented', r.stderr)
        r = cpctl('--timeout-ms', '200', 'call', self.test_url, 'cpctl.test.v1.Test/Slow', '{}')
        self.assertEqual(r.returncode, 1)
        self.assertIn('deadline_exceeded', r.stderr)
        r = cpctl('call', 'http://127.0.0.1:1', 'kv.v1.KVService/Get', '{}')
        self.assertEqual(r.returncode, 1)
        self.assertIn('unavailable', r.stderr)

    # call: streams, without being told the kind

    def test_call_server_stream(self):
        r = cpctl('call', self.test_url, 'cpctl.test.v1.Test/Count', '{}')
        self.assert_ok(r)
        self.assertEqual([json.loads(l) for l in r.stdout.splitlines()],
                         [{'i': 1}, {'i': 2}, {'i': 3}])

    def test_call_client_stream(self):
        r = cpctl('call', self.test_url, 'cpctl.test.v1.Test/Sum', '-',
                  stdin='{"x": 1}\n{"x": 2}\n\n{"x": 3}\n')
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout), {'count': 3})
        # One message on standard input: tried as unary, then as a stream.
        r = cpctl('call', self.test_url, 'cpctl.test.v1.Test/Sum', stdin='{"x": 1}\n')
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout), {'count': 1})

    def test_call_bidi(self):
        r = cpctl('call', '--kind', 'stream', self.test_url, 'cpctl.test.v1.Test/Chat',
                  stdin='{"n": 1}\n{"n": 2}\n')
        self.assert_ok(r)
        self.assertEqual([json.loads(l) for l in r.stdout.splitlines()], [{'n': 1}, {'n': 2}])

    def test_call_kind_unary_refused_for_stream(self):
        r = cpctl('call', '--kind', 'unary', self.test_url, 'cpctl.test.v1.Test/Count', '{}')
        self.assertEqual(r.returncode, 1)
        self.assertIn('not a unary method', r.stderr)

    def test_call_server_stream_of_kv(self):
        # A Watch that never ends by itself: the first event arrives, printed
        # as soon as it is received.
        proc = subprocess.Popen([CPCTL, 'call', self.kv_url, 'kv.v1.KVService/Watch',
                                 '{"prefix": "w/"}'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.3)
            self.assert_ok(cpctl('call', self.kv_url, 'kv.v1.KVService/Put',
                                 '{"key": "w/1", "value": "eA=="}'))
            event = json.loads(proc.stdout.readline())
            self.assertEqual(event['key'], 'w/1')
            self.assertEqual(event['type'], 'EVENT_TYPE_PUT')
        finally:
            proc.kill()
            proc.wait()

    # launch

    def test_launch(self):
        r = cpctl('launch', KV_PLUGIN, '--', 'call', 'kv.v1.KVService/Get', '{"key": "x"}')
        self.assert_ok(r)
        self.assertEqual(json.loads(r.stdout), {})
        r = cpctl('launch', KV_PLUGIN, '--', 'plugins')
        self.assert_ok(r)
        self.assertIn('kv 1.0.0', r.stdout)

    # usage

    def test_usage(self):
        for args in ([], ['frobnicate'], ['call', self.kv_url], ['call', self.kv_url, 'NoSlash', '{}'],
                     ['launch', KV_PLUGIN], ['--kind', 'sideways', 'call', self.kv_url, 'a/b', '{}'],
                     ['-H', 'no colon', 'call', self.kv_url, 'a/b', '{}']):
            r = cpctl(*args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))



def openssl(*args, cwd):
    subprocess.run(['openssl', *args], cwd=cwd, check=True, capture_output=True)


def make_cert(directory, name, subject, ca, extensions):
    """An ECDSA P-256 key and a certificate signed by @ca (name of its files)."""
    ext = os.path.join(directory, name + '.ext')
    with open(ext, 'w') as f:
        f.write(extensions)
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
            '-keyout', name + '.key', '-out', name + '.csr', '-subj', subject, cwd=directory)
    openssl('x509', '-req', '-in', name + '.csr', '-CA', ca + '.pem', '-CAkey', ca + '.key',
            '-set_serial', str(abs(hash(name)) % 100000 + 2), '-days', '1', '-sha256',
            '-extfile', ext, '-out', name + '.pem', cwd=directory)


@unittest.skipUnless(shutil.which('openssl'), 'needs the openssl command (Debian: openssl)')
class MutualTls(unittest.TestCase):
    """The KV plugin with --tls-cert/--tls-key/--tls-ca/--tls-require-client-cert,
    cpctl with --cacert/--cert/--key. Throwaway certificates, made here."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='cpctl-tls-')
        d = cls.dir
        for ca in ('ca', 'other-ca'):
            openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                    '-nodes', '-keyout', ca + '.key', '-out', ca + '.pem', '-days', '1',
                    '-subj', '/CN=' + ca, '-addext', 'basicConstraints=critical,CA:TRUE',
                    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', cwd=d)
        make_cert(d, 'server', '/CN=localhost', 'ca',
                  'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
        make_cert(d, 'client', '/CN=cpctl-user', 'ca', 'extendedKeyUsage=clientAuth\n')
        make_cert(d, 'stranger', '/CN=stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n')
        cls.kv, cls.url = start([KV_PLUGIN, '--listen', '127.0.0.1:0',
                                 '--tls-cert', os.path.join(d, 'server.pem'),
                                 '--tls-key', os.path.join(d, 'server.key'),
                                 '--tls-ca', os.path.join(d, 'ca.pem'),
                                 '--tls-require-client-cert'], env=TLS_ENV)

    @classmethod
    def tearDownClass(cls):
        cls.kv.send_signal(signal.SIGTERM)
        try:
            cls.kv.wait(10)
        except subprocess.TimeoutExpired:
            cls.kv.kill()
            cls.kv.wait()
        shutil.rmtree(cls.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_https_url(self):
        self.assertTrue(self.url.startswith('https://127.0.0.1:'), self.url)

    def test_client_certificate(self):
        r = cpctl_tls('--cacert', self.path('ca.pem'), '--cert', self.path('client.pem'),
                  '--key', self.path('client.key'), 'health', self.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), 'SERVING')
        r = cpctl_tls('--cacert', self.path('ca.pem'), '--cert', self.path('client.pem'),
                  '--key', self.path('client.key'), 'call', self.url, 'kv.v1.KVService/Get',
                  '{"key": "x"}')
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_refused(self):
        for args in ([], ['--cert', self.path('stranger.pem'), '--key', self.path('stranger.key')]):
            r = cpctl_tls('--cacert', self.path('ca.pem'), *args, 'health', self.url)
            self.assertEqual(r.returncode, 1, (args, r.stdout, r.stderr))

    def test_key_without_cert(self):
        r = cpctl_tls('--key', self.path('client.key'), 'health', self.url)
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_bad_plugin_options(self):
        r = subprocess.run([KV_PLUGIN, '--tls-cert', self.path('absent.pem')],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)


class Documentation(unittest.TestCase):
    COMMANDS = ['plugins', 'health', 'describe', 'call', 'launch']

    def test_help_and_manual_agree(self):
        r = cpctl('--help')
        self.assertEqual(r.returncode, 0)
        options = sorted(set(re.findall(r'--([a-z][a-z-]+)', r.stdout)) - {'help', 'help-all'})
        self.assertGreaterEqual(len(options), 6)
        with open(os.path.join(DATA, 'cpctl.1')) as f:
            manual = f.read().replace('\\-', '-')
        for word in options:
            self.assertIn('--' + word, manual)
        for command in self.COMMANDS:
            self.assertIn(command, r.stdout)
            self.assertIn('.B %s' % command, manual)

    def complete(self, line):
        script = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _cpctl; '
                  'printf "%%s\\n" "${COMPREPLY[@]}"'
                  % (os.path.join(DATA, 'cpctl.bash-completion'), line,
                     len(shlex.split(line)) - (0 if line.endswith(' ') else 1)))
        if line.endswith(' '):
            script = script.replace('COMP_WORDS=(%s)' % line, 'COMP_WORDS=(%s "")' % line)
        r = subprocess.run(['bash', '-c', script], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return sorted(w for w in r.stdout.split('\n') if w)

    def test_bash_completion(self):
        self.assertEqual(self.complete('cpctl '), sorted(self.COMMANDS))
        self.assertEqual(self.complete('cpctl pl'), ['plugins'])
        self.assertEqual(self.complete('cpctl -H "a: b" c'), ['call'])
        self.assertEqual(self.complete('cpctl call --k'), ['--key', '--kind'])
        self.assertEqual(self.complete('cpctl call --kind '), ['stream', 'unary'])
        self.assertEqual(self.complete('cpctl launch ./p -- h'), ['health'])
        self.assertEqual(self.complete('cpctl d'), ['describe'])


if __name__ == '__main__':
    unittest.main(verbosity=2)
