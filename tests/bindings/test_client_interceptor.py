#!/usr/bin/python3
"""Client interceptors and retry policies from Python, through GObject-Introspection.

A subclass of ConnectPlugin.ClientInterceptor overrides do_intercept (adding
a request header the server sees, or failing the call locally with a raised
GLib.Error) and do_completed; another decides asynchronously
(do_intercept_async / do_intercept_finish). A ConnectPlugin.RetryPolicy is
configured with its GIR-friendly setters and retries an idempotent call.

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


class TokenInterceptor(Cp.ClientInterceptor):
    """Adds "x-token: py"; fails calls whose request is "forbidden"."""

    def __init__(self, name, log):
        super().__init__()
        self.name = name
        self.log = log
        self.seen = []

    def do_intercept(self, call):
        self.log.append(self.name)
        self.seen.append((call.get_procedure(), call.get_method_kind(),
                          call.get_request().get_value(), call.get_attempts()))
        call.get_request_headers().replace("x-token", "py")
        if call.get_request().get_value() == "forbidden":
            raise GLib.Error.new_literal(Cp.error_quark(), "not from Python",
                                         int(Cp.Error.PERMISSION_DENIED))
        return True

    def do_completed(self, call, error):
        code = "ok" if error is None else Cp.error_code_to_string(error.code)
        self.log.append("%s:%s:%d" % (self.name, code, call.get_attempts()))
        self.trailer = call.get_response_trailers().get_one("x-trail")


class LaterInterceptor(Cp.ClientInterceptor):
    """Decides in a later main-loop iteration: adds "x-later: yes"."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def do_intercept_async(self, call, cancellable, callback, *user_data):
        self.log.append("L")
        task = Gio.Task.new(self, cancellable, callback)

        def decide():
            call.get_request_headers().replace("x-later", "yes")
            task.return_boolean(True)
            return GLib.SOURCE_REMOVE

        GLib.idle_add(decide)

    def do_intercept_finish(self, result):
        return result.propagate_boolean()

    def do_completed(self, call, error):
        self.log.append("L:" + ("ok" if error is None else Cp.error_code_to_string(error.code)))


class ClientInterceptorTest(unittest.TestCase):
    def setUp(self):
        self.loop = GLib.MainLoop()
        self.server = Cp.RpcServer.new()
        info = Cp.MethodInfo.new(PROCEDURE, Cp.MethodKind.UNARY,
                                 Cp.StringValue.__gtype__, Cp.StringValue.__gtype__)
        self.requests = []
        self.fail_next = 0

        def handle(invocation, request):
            headers = invocation.get_request_headers()
            self.requests.append((request.get_value(), headers.get_one("x-token"),
                                  headers.get_one("x-later")))
            invocation.get_response_trailers().append("x-trail", "t")
            if self.fail_next > 0:
                self.fail_next -= 1
                invocation.return_error_literal(Cp.Error.UNAVAILABLE, "down")
                return
            invocation.return_message(Cp.StringValue.new("echo: " + request.get_value()))

        self.server.add_method(info, handle)
        self.url = self.server.listen("127.0.0.1:0")
        self.channel = Cp.Channel.new(self.url)

    def tearDown(self):
        self.server.close()

    def call(self, text, options=None):
        result = {}

        def done(source, res):
            try:
                result["reply"] = source.call_finish(res)
            except GLib.Error as e:
                result["error"] = e
            self.loop.quit()

        self.channel.call_async(PROCEDURE, Cp.StringValue.new(text), Cp.StringValue.__gtype__,
                                options, None, done)
        guard = GLib.timeout_add_seconds(10, self.loop.quit)
        self.loop.run()
        GLib.source_remove(guard)
        return result

    def test_header_and_local_failure(self):
        log = []
        token = TokenInterceptor("T", log)
        self.channel.add_interceptor(token)

        result = self.call("hi")
        self.assertNotIn("error", result)
        self.assertEqual(result["reply"].get_value(), "echo: hi")
        self.assertEqual(self.requests, [("hi", "py", None)])  # the server saw the header
        self.assertEqual(log, ["T", "T:ok:1"])
        self.assertEqual(token.trailer, "t")
        self.assertEqual(token.seen, [(PROCEDURE, Cp.MethodKind.UNARY, "hi", 0)])

        del log[:]
        result = self.call("forbidden")
        err = result["error"]
        self.assertEqual(err.domain, CP_DOMAIN)
        self.assertEqual(err.code, int(Cp.Error.PERMISSION_DENIED))
        self.assertEqual(err.message, "not from Python")
        self.assertEqual(len(self.requests), 1)  # failed locally: nothing sent
        self.assertEqual(log, ["T", "T:permission_denied:0"])

    def test_async_and_per_call(self):
        log = []
        self.channel.add_interceptor(TokenInterceptor("T", log))
        options = Cp.CallOptions.new()
        options.add_interceptor(LaterInterceptor(log))

        result = self.call("hi", options)
        self.assertEqual(result["reply"].get_value(), "echo: hi")
        self.assertEqual(self.requests, [("hi", "py", "yes")])
        self.assertEqual(log, ["T", "L", "L:ok", "T:ok:1"])

    def test_observer_signal(self):
        outcomes = []
        observer = Cp.ClientInterceptor.new()
        observer.connect("completed", lambda _i, call, error: outcomes.append(
            (call.get_procedure(), None if error is None else error.code)))
        self.channel.add_interceptor(observer)
        self.call("a")
        self.assertEqual(outcomes, [(PROCEDURE, None)])

    def test_retry_policy(self):
        policy = Cp.RetryPolicy.new()
        self.assertEqual(policy.get_max_attempts(), 3)
        policy.set_retryable_codes([Cp.Error.UNAVAILABLE, Cp.Error.INTERNAL])
        self.assertEqual(list(policy.get_retryable_codes()),
                         [Cp.Error.INTERNAL, Cp.Error.UNAVAILABLE])
        self.assertEqual(list(policy.props.retryable_code_names), ["internal", "unavailable"])
        policy.set_initial_backoff_ms(10)
        retries = []
        policy.connect("retrying", lambda _p, procedure, attempt, delay, error:
                       retries.append((procedure, attempt, error.code)))
        self.channel.props.retry_policy = policy

        # Not known to be idempotent: one attempt.
        self.fail_next = 1
        result = self.call("once")
        self.assertEqual(result["error"].code, int(Cp.Error.UNAVAILABLE))
        self.assertEqual(len(self.requests), 1)

        # Marked idempotent: tried again, after a backoff.
        options = Cp.CallOptions.new()
        options.set_idempotent(True)
        self.fail_next = 1
        result = self.call("twice", options)
        self.assertEqual(result["reply"].get_value(), "echo: twice")
        self.assertEqual(len(self.requests), 3)
        self.assertEqual(retries, [(PROCEDURE, 2, int(Cp.Error.UNAVAILABLE))])
        self.assertEqual(policy.get_n_retries(), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=[sys.argv[0]])
