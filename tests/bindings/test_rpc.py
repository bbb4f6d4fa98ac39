#!/usr/bin/python3
"""ConnectPlugin from Python through GObject-Introspection: a server and a call.

Run with Debian's /usr/bin/python3 (PyGObject); meson sets GI_TYPELIB_PATH and
LD_LIBRARY_PATH to the build tree.
"""
import sys
import unittest

import gi

gi.require_version("ConnectPlugin", "1.0")
gi.require_version("GLib", "2.0")
from gi.repository import ConnectPlugin as Cp  # noqa: E402
from gi.repository import GLib  # noqa: E402

PROCEDURE = "/test.v1.EchoService/Echo"


class RpcTest(unittest.TestCase):
    def setUp(self):
        self.loop = GLib.MainLoop()
        self.server = Cp.RpcServer.new()
        info = Cp.MethodInfo.new(PROCEDURE, Cp.MethodKind.UNARY,
                                 Cp.StringValue.__gtype__, Cp.StringValue.__gtype__)
        self.calls = []

        def handle(invocation, request):
            text = request.get_value()
            self.calls.append((invocation.get_procedure(), text))
            if text == "fail":
                invocation.return_error_literal(Cp.Error.FAILED_PRECONDITION, "no thanks")
                return
            reply = Cp.StringValue.new("echo: " + text)
            invocation.return_message(reply)

        self.server.add_method(info, handle)
        self.url = self.server.listen("127.0.0.1:0")
        self.assertTrue(self.url.startswith("http://127.0.0.1:"))

    def tearDown(self):
        self.server.close()

    def call(self, text, codec=Cp.Codec.PROTO):
        channel = Cp.Channel.new(self.url)
        options = Cp.CallOptions.new()
        options.set_codec(codec)
        result = {}

        def done(source, res):
            try:
                result["reply"] = source.call_finish(res)
            except GLib.Error as e:
                result["error"] = e
            self.loop.quit()

        channel.call_async(PROCEDURE, Cp.StringValue.new(text), Cp.StringValue.__gtype__,
                           options, None, done)
        GLib.timeout_add_seconds(10, self.loop.quit)
        self.loop.run()
        return result

    def test_unary_call(self):
        for codec in (Cp.Codec.PROTO, Cp.Codec.JSON):
            result = self.call("héllo", codec)
            self.assertNotIn("error", result)
            self.assertEqual(result["reply"].get_value(), "echo: héllo")
        self.assertEqual(self.calls, [(PROCEDURE, "héllo"), (PROCEDURE, "héllo")])

    def test_error(self):
        result = self.call("fail")
        err = result["error"]
        self.assertEqual(err.domain, GLib.quark_to_string(Cp.error_quark()))
        self.assertEqual(err.code, int(Cp.Error.FAILED_PRECONDITION))
        self.assertEqual(err.message, "no thanks")


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=[sys.argv[0]])
