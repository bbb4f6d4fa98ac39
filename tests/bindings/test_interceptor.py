#!/usr/bin/python3
"""Server interceptors written in Python, through GObject-Introspection.

Subclasses of ConnectPlugin.ServerInterceptor override do_intercept (or the
do_intercept_async / do_intercept_finish pair) and do_completed; a refusal is
a raised GLib.Error in the Connect domain.

Run with Debian's /usr/bin/python3 (PyGObject); meson sets GI_TYPELIB_PATH and
LD_LIBRARY_PATH to the build tree.
"""
import sys
import unittest

import gi

gi.require_version("ConnectPlugin", "1.0")
gi.require_version("GLib", "2.0")
gi.require_version("Gio", "2.0")
from gi.repository import ConnectPlugin as Cp  # noqa: E402
from gi.repository import Gio, GLib  # noqa: E402

PROCEDURE = "/test.v1.EchoService/Echo"
CP_DOMAIN = GLib.quark_to_string(Cp.error_quark())


class TokenInterceptor(Cp.ServerInterceptor):
    """Refuses calls without "x-token: good"; records what it saw."""

    def __init__(self, name, log):
        super().__init__()
        self.name = name
        self.log = log
        self.seen = []

    def do_intercept(self, invocation, request):
        self.log.append(self.name)
        headers = invocation.get_request_headers()
        self.seen.append((invocation.get_procedure(),
                          invocation.get_method_info().get_kind(),
                          request.get_value() if request is not None else None,
                          invocation.get_remote_address() is not None))
        invocation.get_response_headers().append("x-intercepted-by", self.name)
        invocation.get_response_trailers().append("x-seen-by", self.name)
        if headers.get_one("x-token") != "good":
            raise GLib.Error.new_literal(Cp.error_quark(), "bad token",
                                         int(Cp.Error.UNAUTHENTICATED))
        return True

    def do_completed(self, invocation, error):
        code = "ok" if error is None else Cp.error_code_to_string(error.code)
        self.log.append("%s:%s" % (self.name, code))


class QuotaInterceptor(Cp.ServerInterceptor):
    """Decides asynchronously (in a later main-loop iteration): the first
    `quota` calls pass, later ones are resource_exhausted."""

    def __init__(self, name, log, quota):
        super().__init__()
        self.name = name
        self.log = log
        self.quota = quota

    def do_intercept_async(self, invocation, request, cancellable, callback, *user_data):
        self.log.append(self.name)
        task = Gio.Task.new(self, cancellable, callback)

        def decide():
            if self.quota > 0:
                self.quota -= 1
                task.return_boolean(True)
            else:
                task.return_error(GLib.Error.new_literal(
                    Cp.error_quark(), "quota exceeded", int(Cp.Error.RESOURCE_EXHAUSTED)))
            return GLib.SOURCE_REMOVE

        GLib.idle_add(decide)

    def do_intercept_finish(self, result):
        return result.propagate_boolean()

    def do_completed(self, invocation, error):
        code = "ok" if error is None else Cp.error_code_to_string(error.code)
        self.log.append("%s:%s" % (self.name, code))


class InterceptorTest(unittest.TestCase):
    def setUp(self):
        self.loop = GLib.MainLoop()
        self.server = Cp.RpcServer.new()
        info = Cp.MethodInfo.new(PROCEDURE, Cp.MethodKind.UNARY,
                                 Cp.StringValue.__gtype__, Cp.StringValue.__gtype__)
        self.log = []

        def handle(invocation, request):
            self.log.append("handler")
            invocation.return_message(Cp.StringValue.new("echo: " + request.get_value()))

        self.server.add_method(info, handle)

    def tearDown(self):
        self.server.close()

    def listen(self):
        self.url = self.server.listen("127.0.0.1:0")

    def call(self, text, token=None):
        channel = Cp.Channel.new(self.url)
        options = Cp.CallOptions.new()
        if token is not None:
            options.get_request_headers().append("x-token", token)
        result = {}

        def done(source, res):
            try:
                result["reply"] = source.call_finish(res)
            except GLib.Error as e:
                result["error"] = e
            self.loop.quit()

        channel.call_async(PROCEDURE, Cp.StringValue.new(text), Cp.StringValue.__gtype__,
                           options, None, done)
        guard = GLib.timeout_add_seconds(10, self.loop.quit)
        self.loop.run()
        GLib.source_remove(guard)
        result["headers"] = options.get_response_headers()
        result["trailers"] = options.get_response_trailers()
        return result

    def test_sync_refuse_and_proceed(self):
        token = TokenInterceptor("T", self.log)
        self.server.add_interceptor(token)
        self.listen()

        result = self.call("hi")
        err = result["error"]
        self.assertEqual(err.domain, CP_DOMAIN)
        self.assertEqual(err.code, int(Cp.Error.UNAUTHENTICATED))
        self.assertEqual(err.message, "bad token")
        self.assertEqual(self.log, ["T", "T:unauthenticated"])  # no handler

        del self.log[:]
        result = self.call("hi", token="good")
        self.assertNotIn("error", result)
        self.assertEqual(result["reply"].get_value(), "echo: hi")
        self.assertEqual(result["headers"].get_one("x-intercepted-by"), "T")
        self.assertEqual(result["trailers"].get_one("x-seen-by"), "T")
        self.assertEqual(self.log, ["T", "handler", "T:ok"])
        self.assertEqual(token.seen[-1], (PROCEDURE, Cp.MethodKind.UNARY, "hi", True))

    def test_chain_order_and_async(self):
        token = TokenInterceptor("T", self.log)
        quota = QuotaInterceptor("Q", self.log, quota=1)
        self.server.add_interceptor(token)
        self.server.add_interceptor(quota)
        self.listen()

        result = self.call("one", token="good")
        self.assertEqual(result["reply"].get_value(), "echo: one")
        self.assertEqual(self.log, ["T", "Q", "handler", "Q:ok", "T:ok"])

        del self.log[:]
        result = self.call("two", token="good")
        self.assertEqual(result["error"].code, int(Cp.Error.RESOURCE_EXHAUSTED))
        self.assertEqual(result["error"].message, "quota exceeded")
        self.assertEqual(self.log, ["T", "Q", "Q:resource_exhausted", "T:resource_exhausted"])

    def test_observer_signal(self):
        outcomes = []
        observer = Cp.ServerInterceptor.new()
        observer.connect("completed", lambda _i, invocation, error: outcomes.append(
            (invocation.get_procedure(), None if error is None else error.code)))
        self.server.add_interceptor(observer)
        self.server.add_interceptor(TokenInterceptor("T", self.log))
        self.listen()

        self.call("a", token="good")
        self.call("b")
        self.assertEqual(outcomes, [(PROCEDURE, None),
                                    (PROCEDURE, int(Cp.Error.UNAUTHENTICATED))])


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=[sys.argv[0]])
