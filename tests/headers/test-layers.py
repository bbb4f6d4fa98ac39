#!/usr/bin/env python3
# test-layers: the build keeps connectplugin/'s layers apart.
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Each folder's static library sees only its own and the lower folders'
# include directories (connectplugin/meson.build), so a header of a higher
# folder cannot be included. This test takes the real compile command of one
# source of each folder's library from compile_commands.json and
# preprocesses a probe with it: the folder's own headers and the lower ones
# must be found, every higher folder's must not; and each header of a folder
# compiles alone with its folder's command. It also checks that no
# library file reaches around that with a path (`#include "host/cp-client.h"`
# would resolve from the top folder), the generated protocol headers'
# "connectplugin/protocol/NAME.cp.h" being the one allowed form.
#
# Usage: test-layers.py SOURCE_ROOT BUILD_ROOT

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import unittest

LAYERS = ['wire', 'message', 'http', 'rpc', 'service', 'protocol', 'plugin', 'host']
# What each folder's library sees besides its own headers: the lower folders,
# except that the HTTP transport stands on GIO and libsoup alone.
SEES = {folder: LAYERS[:i] for i, folder in enumerate(LAYERS)}
SEES['http'] = []

SOURCE_ROOT, BUILD_ROOT = sys.argv[1], sys.argv[2]
LIB_DIR = os.path.join(SOURCE_ROOT, 'connectplugin')


def folder_headers(folder):
    """A folder's headers, as the folders above include them: by bare name,
    the generated protocol headers with their path."""
    headers = sorted(f for f in os.listdir(os.path.join(LIB_DIR, folder)) if f.endswith('.h'))
    if folder == 'protocol':
        generated = os.path.join(BUILD_ROOT, 'connectplugin', 'protocol')
        headers += sorted('connectplugin/protocol/' + f for f in os.listdir(generated)
                          if f.endswith('.cp.h'))
    return headers


def folder_command(folder):
    """The compiler command of one of @folder's library sources, as a list
    without its source, output and dependency-file arguments."""
    with open(os.path.join(BUILD_ROOT, 'compile_commands.json')) as f:
        commands = json.load(f)
    marker = 'libcp-%s.a.p' % folder
    for entry in commands:
        if marker in entry['output'] and entry['file'].endswith('.c'):
            args = shlex.split(entry['command']) if 'command' in entry else entry['arguments']
            out, skip = [], False
            for a in args:
                if skip:
                    skip = False
                elif a in ('-o', '-c', '-MQ', '-MF'):
                    skip = True
                elif a not in ('-MD',):
                    out.append(a)
            return entry['directory'], out
    raise AssertionError('no compile command for the %s library' % folder)


def preprocess(folder, header, compile=False):
    """Preprocesses (or with @compile, compiles) a file including @header
    as @folder's library does."""
    directory, args = folder_command(folder)
    with tempfile.NamedTemporaryFile('w', suffix='.c', delete=False) as probe:
        probe.write('#include "%s"\n' % header)
    try:
        mode = ['-fsyntax-only'] if compile else ['-E', '-o', os.devnull]
        proc = subprocess.run(args + mode + [probe.name], cwd=directory,
                              capture_output=True, text=True)
    finally:
        os.unlink(probe.name)
    return proc.returncode, proc.stderr


class Layers(unittest.TestCase):
    def test_own_and_lower_headers_found(self):
        for folder in LAYERS:
            for lower in SEES[folder] + [folder]:
                header = folder_headers(lower)[0]
                rc, err = preprocess(folder, header)
                with self.subTest(folder=folder, header=header):
                    self.assertEqual(rc, 0, err)

    def test_each_header_in_its_own_folder(self):
        # Each header compiles alone in its own folder's context: it
        # includes what it needs, and nothing from above (a header that no
        # source of its folder includes would otherwise escape the check).
        for folder in LAYERS:
            for header in folder_headers(folder):
                rc, err = preprocess(folder, header, compile=True)
                with self.subTest(folder=folder, header=header):
                    self.assertEqual(rc, 0, err)

    def test_other_headers_not_found(self):
        for folder in LAYERS:
            for other in [f for f in LAYERS if f not in SEES[folder] + [folder]]:
                for header in folder_headers(other):
                    rc, err = preprocess(folder, header)
                    with self.subTest(folder=folder, header=header):
                        self.assertNotEqual(rc, 0, '%s/ can include %s' % (folder, header))
                        self.assertIn('No such file', err)

    def test_no_include_with_a_path(self):
        allowed = re.compile(r'^connectplugin/protocol/[a-z0-9_]+\.cp\.h$')
        for folder in LAYERS:
            path = os.path.join(LIB_DIR, folder)
            for name in sorted(os.listdir(path)):
                if not name.endswith(('.c', '.h')):
                    continue
                with open(os.path.join(path, name)) as f:
                    for n, line in enumerate(f, 1):
                        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                        if m and '/' in m.group(1):
                            with self.subTest(file='%s/%s:%d' % (folder, name, n)):
                                self.assertRegex(m.group(1), allowed)


if __name__ == '__main__':
    unittest.main(argv=sys.argv[:1], verbosity=2)
