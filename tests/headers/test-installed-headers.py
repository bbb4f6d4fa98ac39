#!/usr/bin/env python3
# test-installed-headers: the installed headers, compiled as a project does.
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs the build into a temporary DESTDIR (meson install --no-rebuild)
# and compiles tiny C files against it with the installed
# connectplugin-1.0.pc:
#  - <connectplugin.h> and each generated protocol header
#    (<connectplugin/protocol/NAME.cp.h>) compile when included first;
#  - every other public header refuses to be included directly;
#  - the generated protocol headers sit under connectplugin/protocol/, so a
#    project's own health.cp.h is not shadowed by ours.
#
# Usage: test-installed-headers.py BUILD_ROOT PREFIX INCLUDEDIR LIBDIR CC...

import os
import shlex
import subprocess
import sys
import tempfile
import unittest

BUILD_ROOT, PREFIX, INCLUDEDIR, LIBDIR = sys.argv[1:5]
CC = sys.argv[5:]
PACKAGE = 'connectplugin-1.0'


def under(root, path):
    return os.path.join(root, os.path.join(PREFIX, path).lstrip('/'))


class Installed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix='cp-headers-')
        cls.destdir = os.path.join(cls.tmp.name, 'dest')
        subprocess.run(['meson', 'install', '-C', BUILD_ROOT, '--no-rebuild', '--quiet',
                        '--destdir', cls.destdir], check=True, stdout=subprocess.DEVNULL)
        cls.include = os.path.join(under(cls.destdir, INCLUDEDIR), PACKAGE)
        # The .pc names the real prefix: point its -I at the DESTDIR copy.
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(under(cls.destdir, LIBDIR), 'pkgconfig'))
        cflags = subprocess.run(['pkg-config', '--cflags', PACKAGE], env=env, check=True,
                                capture_output=True, text=True).stdout
        real_include = os.path.join(PREFIX, INCLUDEDIR, PACKAGE)
        cls.cflags = ['-I' + cls.include if f == '-I' + real_include else f for f in shlex.split(cflags)]
        assert '-I' + cls.include in cls.cflags, cls.cflags

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compile(self, source, extra=()):
        with tempfile.TemporaryDirectory(dir=self.tmp.name) as d:
            path = os.path.join(d, 'probe.c')
            with open(path, 'w') as f:
                f.write(source)
            proc = subprocess.run(CC + ['-std=c11', '-Wall', '-Werror', '-fsyntax-only']
                                  + self.cflags + list(extra) + [path],
                                  capture_output=True, text=True)
        return proc.returncode, proc.stderr

    def protocol_headers(self):
        d = os.path.join(self.include, 'connectplugin', 'protocol')
        self.assertTrue(os.path.isdir(d), 'no connectplugin/protocol/ in %s' % self.include)
        return sorted(f for f in os.listdir(d) if f.endswith('.cp.h'))

    def test_protocol_headers_namespaced(self):
        headers = self.protocol_headers()
        for name in ['handshake', 'broker', 'lifecycle', 'registry', 'control', 'identity', 'health']:
            self.assertIn(name + '.cp.h', headers)
        flat = [f for f in os.listdir(self.include) if f.endswith('.cp.h')]
        self.assertEqual(flat, [], 'generated headers in the include root')

    def test_included_first(self):
        for header in ['connectplugin.h'] + ['connectplugin/protocol/' + h for h in self.protocol_headers()]:
            rc, err = self.compile('#include <%s>\nint main (void) { return 0; }\n' % header)
            with self.subTest(header=header):
                self.assertEqual(rc, 0, err)

    def test_protocol_header_then_umbrella(self):
        rc, err = self.compile('#include <connectplugin/protocol/health.cp.h>\n'
                               '#include <connectplugin.h>\n'
                               'int main (void) { return cp_client_get_type () == 0; }\n')
        self.assertEqual(rc, 0, err)

    def test_other_headers_refuse_direct_inclusion(self):
        headers = sorted(f for f in os.listdir(self.include)
                         if f.endswith('.h') and f != 'connectplugin.h')
        self.assertIn('cp-types.h', headers)
        for header in headers:
            rc, err = self.compile('#include <%s>\n' % header)
            with self.subTest(header=header):
                self.assertNotEqual(rc, 0)
                self.assertIn('Only <connectplugin.h> can be included directly', err)

    def test_own_health_proto_not_shadowed(self):
        # A project's generated health.cp.h in its build directory, searched
        # after the installed headers (as pkg-config's -I comes first).
        user = os.path.join(self.tmp.name, 'user-build')
        os.makedirs(user, exist_ok=True)
        with open(os.path.join(user, 'health.cp.h'), 'w') as f:
            f.write('#pragma once\n#define USER_HEALTH_CP_H 1\n')
        rc, err = self.compile('#include <connectplugin.h>\n'
                               '#include "health.cp.h"\n'
                               '#ifndef USER_HEALTH_CP_H\n#error "the project\'s health.cp.h is shadowed"\n#endif\n'
                               'int main (void) { return 0; }\n', ['-I' + user])
        self.assertEqual(rc, 0, err)


if __name__ == '__main__':
    unittest.main(argv=sys.argv[:1], verbosity=2)
