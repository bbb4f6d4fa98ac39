#!/usr/bin/python3
"""ConnectPlugin from Python: a channel speaking HTTP/2 (h2c) to our server,
unary calls and a full-duplex bidirectional stream.

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

UNARY = "/test.v1.EchoService/Echo"
BIDI = "/test.v1.EchoService/Chat"
HTTP_2 = Cp.HttpVersion.HTTP_2


class Http2Test(unittest.TestCase):
    def setUp(self):
        self.loop = GLib.MainLoop()
        self.server = Cp.RpcServer.new()
        unary = Cp.MethodInfo.new(UNARY, Cp.MethodKind.UNARY,
                                  Cp.StringValue.__gtype__, Cp.StringValue.__gtype__)
        bidi = Cp.MethodInfo.new(BIDI, Cp.MethodKind.BIDI_STREAMING,
                                 Cp.StringValue.__gtype__, Cp.StringValue.__gtype__)

        def handle_unary(invocation, request):
            invocation.return_message(Cp.StringValue.new("echo: " + request.get_value()))

        def handle_bidi(invocation, request):
            def received(inv, res):
                try:
                    message = inv.receive_finish(res)
                except GLib.Error:
                    return
                if message is None:
                    inv.return_ok()
                    return
                inv.send_message(Cp.StringValue.new("echo: " + message.get_value()))
                inv.receive_async(None, received)

            invocation.receive_async(None, received)

        self.server.add_method(unary, handle_unary)
        self.server.add_method(bidi, handle_bidi)
        self.url = self.server.listen("127.0.0.1:0")
        self.channel = Cp.Channel.new(self.url)
        self.channel.set_http_version(HTTP_2)
        # Also settable as a property.
        self.assertEqual(self.channel.props.http_version, HTTP_2)

    def tearDown(self):
        self.server.close()

    def test_unary(self):
        result = {}

        def done(source, res):
            result["reply"] = source.call_finish(res)
            self.loop.quit()

        # The server answers from this thread's main loop: an async call.
        self.channel.call_async(UNARY, Cp.StringValue.new("hi"), Cp.StringValue.__gtype__,
                                None, None, done)
        GLib.timeout_add_seconds(10, self.loop.quit)
        self.loop.run()
        self.assertEqual(result["reply"].get_value(), "echo: hi")

    def test_bidi_full_duplex(self):
        # Each request is sent only after the reply to the previous one came
        # back: this needs the request to stay open while responses arrive.
        requests = self.channel.call_bidi_stream(BIDI, Cp.StringValue.__gtype__, None)
        responses = requests.start_duplex()
        replies = []
        result = {}

        def on_message(stream, message):
            replies.append(message.get_value())
            if len(replies) < 3:
                requests.send(Cp.StringValue.new("m%d" % len(replies)))
            else:
                requests.close_send()

        def on_closed(stream, error):
            result["error"] = error
            self.loop.quit()

        responses.connect("message", on_message)
        responses.connect("closed", on_closed)
        requests.send(Cp.StringValue.new("m0"))
        GLib.timeout_add_seconds(10, self.loop.quit)
        self.loop.run()
        self.assertIn("error", result, "the stream did not close")
        self.assertIsNone(result["error"])
        self.assertEqual(replies, ["echo: m0", "echo: m1", "echo: m2"])

    def test_client_property(self):
        # CpClient passes it to the channels it connects with.
        client = Cp.Client.new("http://127.0.0.1:1")
        self.assertEqual(client.props.http_version, Cp.HttpVersion.DEFAULT)
        client.props.http_version = HTTP_2
        self.assertEqual(client.props.http_version, HTTP_2)

    def test_duplex_needs_http2(self):
        channel = Cp.Channel.new(self.url)   # HTTP/1.1
        requests = channel.call_bidi_stream(BIDI, Cp.StringValue.__gtype__, None)
        responses = requests.start_duplex()
        result = {}

        def on_closed(stream, error):
            result["error"] = error
            self.loop.quit()

        responses.connect("closed", on_closed)
        GLib.timeout_add_seconds(10, self.loop.quit)
        self.loop.run()
        self.assertTrue(result["error"].matches(Cp.error_quark(), Cp.Error.UNIMPLEMENTED))


if __name__ == "__main__":
    sys.exit(unittest.main())
