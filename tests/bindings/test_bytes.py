#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The PyGObject overrides without a peer: bytes where GBytes is expected
and ConnectError (bindings/python/gi/overrides/ConnectPlugin.py).

Run with Debian's /usr/bin/python3 (PyGObject); meson puts the in-tree
bindings/python on PYTHONPATH and the build tree's ConnectPlugin-1.0 and
Kv-1.0 typelibs on GI_TYPELIB_PATH.
"""
import sys
import unittest

import gi

gi.require_version("ConnectPlugin", "1.0")
gi.require_version("Kv", "1.0")
from gi.repository import ConnectPlugin as Cp  # noqa: E402
from gi.repository import GLib, Kv  # noqa: E402

import connectplugin  # noqa: E402

CP_DOMAIN = GLib.quark_to_string(Cp.error_quark())


def data(gbytes):
    return gbytes.get_data() or b""


class OverridesLoadedTest(unittest.TestCase):
    def test_in_tree_overrides(self):
        # The override module and the package are the in-tree ones.
        overrides = sys.modules["gi.overrides.ConnectPlugin"].__file__
        self.assertTrue(overrides.endswith("bindings/python/gi/overrides/ConnectPlugin.py"),
                        overrides)
        self.assertTrue(connectplugin.__file__.endswith(
            "bindings/python/connectplugin/__init__.py"), connectplugin.__file__)
        self.assertIs(Cp.ConnectError, connectplugin.ConnectError)
        self.assertTrue(issubclass(Kv.PutRequest, Cp.Message))
        self.assertEqual(Cp.Message.__module__, "gi.overrides.ConnectPlugin")
        self.assertTrue(issubclass(Kv.KVServiceProxy, Cp.Proxy))
        self.assertEqual(Cp.Proxy.__module__, "gi.overrides.ConnectPlugin")


class BytesForGBytesTest(unittest.TestCase):
    def test_constructor(self):
        request = Kv.PutRequest(key="k", value=b"v")
        self.assertEqual(request.props.key, "k")
        self.assertIsInstance(request.props.value, GLib.Bytes)
        self.assertEqual(data(request.props.value), b"v")
        # bytearray and memoryview too; GLib.Bytes as before.
        self.assertEqual(data(Kv.PutRequest(value=bytearray(b"ba")).props.value), b"ba")
        self.assertEqual(data(Kv.PutRequest(value=memoryview(b"mv")).props.value), b"mv")
        self.assertEqual(data(Kv.PutRequest(value=GLib.Bytes(b"gb")).props.value), b"gb")
        # Only GBytes properties convert: a string property gets PyGObject's
        # own handling, None stays None.
        self.assertEqual(Kv.PutRequest(key="k", value=None).props.key, "k")

    def test_props_and_set_property(self):
        request = Kv.PutRequest()
        request.props.value = b"one"
        self.assertEqual(data(request.props.value), b"one")
        request.set_property("value", b"two")
        self.assertEqual(data(request.get_property("value")), b"two")
        request.props.key = "key"
        self.assertEqual(request.props.key, "key")
        # The class-level props still lists the pspecs.
        self.assertEqual(Kv.PutRequest.props.value.value_type, GLib.Bytes.__gtype__)
        self.assertIn("value", dir(request.props))

    def test_serialised_bytes(self):
        # The converted value is what goes on the wire.
        request = Kv.PutRequest(key="k", value=b"\x00\xffv")
        parsed = Kv.PutRequest()
        self.assertTrue(parsed.parse(Cp.Codec.PROTO, request.to_bytes()))
        self.assertEqual(data(parsed.props.value), b"\x00\xffv")
        # Message methods taking a GBytes take bytes: parse() here.
        parsed = Kv.PutRequest()
        self.assertTrue(parsed.parse(Cp.Codec.PROTO, bytes(data(request.to_bytes()))))
        self.assertEqual(parsed.props.key, "k")

    def test_setters(self):
        # Generated setters taking a GBytes, where the generator makes them.
        request = Kv.PutRequest()
        setter = getattr(request, "set_value", None)
        if setter is None:
            self.skipTest("Kv.PutRequest has no set_value")
        setter(b"set")
        self.assertEqual(data(request.props.value), b"set")


class ConnectErrorTest(unittest.TestCase):
    def test_from_gerror(self):
        error = Cp.ConnectError.from_gerror(GLib.Error("gone", CP_DOMAIN,
                                                       int(Cp.Error.NOT_FOUND)))
        self.assertIsInstance(error, GLib.Error)
        self.assertIs(type(error.code), Cp.Error)
        self.assertEqual(error.code, Cp.Error.NOT_FOUND)
        self.assertEqual(error.code, int(Cp.Error.NOT_FOUND))
        self.assertEqual(error.code_name, "not_found")
        self.assertEqual(error.domain, CP_DOMAIN)
        self.assertTrue(error.matches(Cp.error_quark(), Cp.Error.NOT_FOUND))
        self.assertEqual(str(error), "not_found: gone (5)")
        # Not a Connect error: left alone.
        other = GLib.Error("other", "g-io-error-quark", 1)
        self.assertIs(Cp.ConnectError.from_gerror(other), other)

    def test_raised_by_a_throwing_method(self):
        # Garbage for a message: parse() throws invalid_argument.
        with self.assertRaises(connectplugin.ConnectError) as cm:
            Kv.PutRequest().parse(Cp.Codec.PROTO, b"\xff\xff\xff")
        self.assertEqual(cm.exception.code, Cp.Error.INVALID_ARGUMENT)
        self.assertEqual(cm.exception.code_name, "invalid_argument")

    def test_dispense_not_found(self):
        client = Cp.Client.new("http://127.0.0.1:1")
        with self.assertRaises(Cp.ConnectError) as cm:
            client.dispense("nope", Kv.KVServiceProxy.__gtype__)
        self.assertIn(cm.exception.code_name, ("not_found", "failed_precondition"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
