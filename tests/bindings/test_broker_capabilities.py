#!/usr/bin/python3
"""A host providing a capability from Python (issue 14): the capability is
a generated skeleton (Kv.KVServiceSkeleton) subclassed in Python and
offered with Cp.Broker.add_capability; a plugin server linked to the host
requests the grant and calls the capability through the generated Kv
proxy, dispatched in-process on the host. Also: host_capabilities in the
handshake, and the refusals a Python host sets up (allow-list, unknown
type, too new a min_version).

Run with Debian's /usr/bin/python3 (PyGObject); meson sets GI_TYPELIB_PATH
and LD_LIBRARY_PATH to the build tree (ConnectPlugin-1.0 and Kv-1.0).
Nothing sleeps: waits iterate the main context, with a timeout only as a
failure guard.
"""
import sys
import unittest

import gi

gi.require_version("ConnectPlugin", "1.0")
gi.require_version("Kv", "1.0")
gi.require_version("GLib", "2.0")
from gi.repository import ConnectPlugin as Cp  # noqa: E402
from gi.repository import GLib, Kv  # noqa: E402

GUARD_S = 10


def wait_until(test, condition, what):
    context = GLib.MainContext.default()
    expired = []

    def on_timeout():
        expired.append(True)
        return GLib.SOURCE_REMOVE

    source = GLib.timeout_add_seconds(GUARD_S, on_timeout)
    try:
        while not condition() and not expired:
            context.iteration(True)
    finally:
        if not expired:
            GLib.source_remove(source)
    test.assertTrue(condition(), "timed out waiting for %s" % what)


def run_async(test, start, finish, what):
    box = {}

    def done(source, result, *unused):
        try:
            box["value"] = finish(source, result)
        except GLib.Error as e:
            box["error"] = e

    start(done)
    wait_until(test, lambda: box, what)
    return box


class Store(Kv.KVServiceSkeleton):
    """The capability, written in Python: answers who asked for what."""

    def __init__(self):
        super().__init__()
        self.seen_authorization = []

    def do_handle_get(self, invocation, request):
        headers = invocation.get_request_headers()
        self.seen_authorization.append(headers.get_one("Authorization"))
        text = "%s for %s" % (request.props.key, headers.get_one("X-Plugin-Runtime-ID"))
        self.complete_get(invocation, Kv.GetResponse(found=True, value=GLib.Bytes(text.encode())))
        return True


class BrokerCapabilityTest(unittest.TestCase):
    def setUp(self):
        self.host = Cp.Server.new()
        self.broker = Cp.Broker.new(self.host)
        self.store = Store()
        self.broker.add_capability("kv-store", "1.2.0", self.store)
        self.host_url = self.host.listen("127.0.0.1:0")
        self.plugin = Cp.Server.new()
        self.plugin.props.host_url = self.host_url
        self.plugin.props.self_id = "app-plugin"
        self.plugin.listen("127.0.0.1:0")
        wait_until(self, lambda: self.plugin.props.runtime_id is not None, "the handshake")

    def tearDown(self):
        self.plugin.close()
        self.host.close()

    def request(self, capability_type, min_version=None):
        return run_async(self, lambda cb: self.plugin.request_capability_async(
                             capability_type, min_version, "tests", None, cb),
                         lambda src, res: src.request_capability_finish(res),
                         "the grant of %s" % capability_type)

    def test_python_capability(self):
        box = self.request("kv-store", "1.0.0")
        self.assertNotIn("error", box)
        channel = box["value"]
        prefix = self.host_url + "/capabilities/kv-store/"
        self.assertTrue(channel.props.base_url.startswith(prefix))
        self.assertEqual(len(channel.props.base_url) - len(prefix), 24)

        proxy = Kv.KVServiceProxy.new(channel)
        box = run_async(self, lambda cb: proxy.call_get(Kv.GetRequest(key="db"), None, None, cb),
                        lambda src, res: Kv.KVServiceProxy.call_get_finish(src, res), "Get")
        self.assertNotIn("error", box)
        self.assertEqual(box["value"].props.value.get_data().decode(),
                         "db for %s" % self.plugin.props.runtime_id)
        # The grant's token stops at the broker.
        self.assertEqual(self.store.seen_authorization, [None])

    def test_handshake_lists_capability(self):
        channel = Cp.Channel.new(self.host_url)
        proxy = Cp.HandshakeServiceProxy.new(channel)
        request = Cp.HandshakeRequest(core_protocol_version=1, app_protocol_version=1,
                                      magic_cookie_key=Cp.MAGIC_COOKIE_KEY,
                                      magic_cookie_value=Cp.MAGIC_COOKIE_VALUE,
                                      self_id="probe")
        box = run_async(self, lambda cb: proxy.call_handshake(request, None, None, cb),
                        lambda src, res: Cp.HandshakeServiceProxy.call_handshake_finish(src, res),
                        "the handshake")
        self.assertNotIn("error", box)
        caps = [(c.get_type_(), c.get_version(), c.get_endpoint())
                for c in box["value"].get_host_capabilities()]
        self.assertEqual(caps, [("kv-store", "1.2.0", self.host_url + "/broker")])

    def test_refusals(self):
        self.assertEqual(self.request("nosuch")["error"].code, int(Cp.Error.NOT_FOUND))
        self.assertEqual(self.request("kv-store", "1.10.0")["error"].code, int(Cp.Error.NOT_FOUND))
        self.broker.allow_capability("app-plugin", "other")
        self.assertEqual(self.request("kv-store")["error"].code, int(Cp.Error.PERMISSION_DENIED))
        self.broker.allow_capability("app-plugin", "kv-store")
        self.assertNotIn("error", self.request("kv-store"))
        self.broker.remove_capability("kv-store")
        self.assertEqual(self.request("kv-store")["error"].code, int(Cp.Error.NOT_FOUND))


if __name__ == "__main__":
    unittest.main(argv=sys.argv, verbosity=2)
