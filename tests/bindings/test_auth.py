#!/usr/bin/python3
"""Authentication helpers from Python, through GObject-Introspection.

A server authenticates with a ConnectPlugin.AuthInterceptor whose bearer
provider checks tokens with a Python callback (a lambda-friendly verify
function), an API key provider keeps a token set, and a provider subclassed
in Python reads a header of its own. The client puts its token on the wire
with ConnectPlugin.CredentialsInterceptor, fixed or from a Python function.

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
PUBLIC = "/test.v1.EchoService/Ping"
CP_DOMAIN = GLib.quark_to_string(Cp.error_quark())


class HeaderProvider(Cp.AuthProvider):
    """Accepts "x-user: NAME" as NAME, rejects "x-user: root"."""

    def do_authenticate(self, invocation):
        user = invocation.get_request_headers().get_one("x-user")
        if user is None:
            return Cp.AuthResult.SKIP, None
        if user == "root":
            raise GLib.Error.new_literal(Cp.error_quark(), "no root",
                                         int(Cp.Error.PERMISSION_DENIED))
        return Cp.AuthResult.ACCEPT, user


class AuthTest(unittest.TestCase):
    def setUp(self):
        self.loop = GLib.MainLoop()
        self.server = Cp.RpcServer.new()
        self.seen = []

        def handle(invocation, request):
            self.seen.append((invocation.get_principal(), invocation.get_auth_scheme(),
                              invocation.get_request_headers().get_one("Authorization")))
            invocation.return_message(Cp.StringValue.new("echo: " + request.get_value()))

        for procedure in (PROCEDURE, PUBLIC):
            info = Cp.MethodInfo.new(procedure, Cp.MethodKind.UNARY,
                                     Cp.StringValue.__gtype__, Cp.StringValue.__gtype__)
            self.server.add_method(info, handle)

        self.verified = []

        def verify(credential):
            self.verified.append(credential)
            if credential.startswith("py-"):
                return True, "py:" + credential[3:]
            return False, None

        self.auth = Cp.AuthInterceptor.new()
        self.auth.add_provider(HeaderProvider(scheme="x-user"))
        bearer = Cp.TokenAuthProvider.new_bearer()
        bearer.set_verify_func(verify)
        self.auth.add_provider(bearer)
        api_key = Cp.TokenAuthProvider.new_api_key("X-Key")
        api_key.add_token("k-123", "service-a")
        self.auth.add_provider(api_key)
        self.auth.add_public_procedure(PUBLIC)
        self.server.add_interceptor(self.auth)

        self.url = self.server.listen("127.0.0.1:0")
        self.channel = Cp.Channel.new(self.url)

    def tearDown(self):
        self.server.close()

    def call(self, procedure=PROCEDURE, headers=(), interceptor=None):
        result = {}
        options = Cp.CallOptions.new()
        for name, value in headers:
            options.get_request_headers().replace(name, value)
        if interceptor is not None:
            options.add_interceptor(interceptor)

        def done(source, res):
            try:
                result["reply"] = source.call_finish(res)
            except GLib.Error as e:
                result["error"] = e
            self.loop.quit()

        self.channel.call_async(procedure, Cp.StringValue.new("hi"), Cp.StringValue.__gtype__,
                                options, None, done)
        guard = GLib.timeout_add_seconds(10, self.loop.quit)
        self.loop.run()
        GLib.source_remove(guard)
        return result

    def assert_unauthenticated(self, result, secret):
        err = result["error"]
        self.assertEqual(err.domain, CP_DOMAIN)
        self.assertEqual(err.code, int(Cp.Error.UNAUTHENTICATED))
        self.assertNotIn(secret, err.message)

    def test_python_verifier_and_client_bearer(self):
        self.channel.add_interceptor(Cp.CredentialsInterceptor.new_bearer("py-alice"))
        result = self.call()
        self.assertEqual(result["reply"].get_value(), "echo: hi")
        self.assertEqual(self.seen, [("py:alice", "bearer", "Bearer py-alice")])
        self.assertEqual(self.verified, ["py-alice"])

    def test_wrong_and_missing(self):
        result = self.call(interceptor=Cp.CredentialsInterceptor.new_bearer("guess-123"))
        self.assert_unauthenticated(result, "guess-123")
        self.assertEqual(result["error"].message, "invalid bearer credentials")
        result = self.call()
        self.assert_unauthenticated(result, "Bearer")
        self.assertEqual(result["error"].message, "missing credentials")
        self.assertEqual(self.seen, [])

    def test_token_func(self):
        tokens = iter(["py-one", "py-two"])
        credentials = Cp.CredentialsInterceptor.new_bearer(None)
        credentials.set_token_func(lambda call: next(tokens))
        self.channel.add_interceptor(credentials)
        self.call()
        self.call()
        self.assertEqual([s[0] for s in self.seen], ["py:one", "py:two"])

    def test_api_key_and_subclass(self):
        self.call(interceptor=Cp.CredentialsInterceptor.new_api_key("X-Key", "k-123"))
        self.assertEqual(self.seen[-1][:2], ("service-a", "api-key"))
        self.call(headers=[("x-user", "erin")])
        self.assertEqual(self.seen[-1][:2], ("erin", "x-user"))
        result = self.call(headers=[("x-user", "root")])
        self.assertEqual(result["error"].code, int(Cp.Error.PERMISSION_DENIED))
        self.assertEqual(result["error"].message, "no root")
        self.assertEqual(len(self.seen), 2)

    def test_public_procedure(self):
        result = self.call(PUBLIC)
        self.assertNotIn("error", result)
        self.assertEqual(self.seen, [(None, None, None)])
        self.assertTrue(self.auth.is_public(PUBLIC))
        self.assertFalse(self.auth.is_public(PROCEDURE))


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=[sys.argv[0]])
