#!/usr/bin/python3
"""The plugin side of the platform from Python through GObject-Introspection
(issue 14): a CpServer linked to a host registers its provides, asks the
host for a capability and discovers another plugin's service, then calls
both through the generated Kv proxy; it also watches a service type.

The host is a fixture written here in Python: a Cp.Server serving
ServiceRegistry, PluginLifecycle and CapabilityBroker skeletons subclassed
in Python, answering as docs/wire-contract.md says (grant endpoint_url =
host + /capabilities/{type}/{grant_id}; discovery endpoint_url =
/services/{type}/{provider}), plus the two Kv.Get methods the host's router
and capability dispatch would serve at those paths, which echo the path and
the Authorization header they were called with.

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
PROVIDER = "kv-plugin-0001"


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


class Registry(Cp.ServiceRegistrySkeleton):
    def __init__(self):
        super().__init__()
        self.registered = []

    def do_handle_register_service(self, invocation, request):
        self.registered.append((request.props.service_type, request.props.version,
                                request.get_metadata().get("base_url")))
        self.complete_register_service(invocation, Cp.RegisterServiceResponse(
            registration_id="reg-%016x" % len(self.registered)))
        return True

    def do_handle_watch_service(self, invocation, request):
        self.watch = invocation
        endpoint = Cp.ServiceEndpoint(provider_id=PROVIDER, version="1.0.0",
                                      endpoint_url="/services/kv/" + PROVIDER)
        invocation.send_message(Cp.WatchServiceEvent(service_type=request.props.service_type,
                                                     state=Cp.ServiceState.AVAILABLE,
                                                     endpoint=endpoint))
        return True

    def do_handle_unregister_service(self, invocation, request):
        self.complete_unregister_service(invocation, Cp.UnregisterServiceResponse())
        return True

    def do_handle_discover_service(self, invocation, request):
        endpoint = Cp.ServiceEndpoint(provider_id=PROVIDER, version="1.0.0",
                                      endpoint_url="/services/%s/%s"
                                      % (request.props.service_type, PROVIDER))
        self.complete_discover_service(invocation, Cp.DiscoverServiceResponse(endpoint=endpoint))
        return True


class Lifecycle(Cp.PluginLifecycleSkeleton):
    def __init__(self):
        super().__init__()
        self.states = []

    def do_handle_report_health(self, invocation, request):
        self.states.append(request.props.state)
        self.complete_report_health(invocation, Cp.ReportHealthResponse())
        return True


class Broker(Cp.CapabilityBrokerSkeleton):
    def __init__(self, host):
        super().__init__()
        self.host = host

    def do_handle_request_capability(self, invocation, request):
        if request.props.capability_type != "kv":
            invocation.return_error_literal(Cp.Error.PERMISSION_DENIED, "not granted")
            return True
        grant = Cp.CapabilityGrant(grant_id="GRANT1", bearer_token="grant-token",
                                   capability_type="kv", version="1.0.0",
                                   endpoint_url=self.host.url + "/capabilities/kv/GRANT1")
        self.complete_request_capability(invocation, Cp.RequestCapabilityResponse(grant=grant))
        return True


class Host:
    """A host fixture: the registry, lifecycle and broker, and the paths a
    router and a capability dispatch would serve."""

    def __init__(self):
        self.server = Cp.Server.new()
        plugin = Cp.Plugin.new("host", "1.0.0")
        self.registry = Registry()
        self.lifecycle = Lifecycle()
        self.broker = Broker(self)
        for skeleton in (self.registry, self.lifecycle, self.broker):
            plugin.add_service(skeleton)
        self.server.add_plugin(plugin)
        rpc = self.server.get_rpc_server()
        for procedure in ("/services/kv/%s/Get" % PROVIDER,
                          "/capabilities/kv/GRANT1/kv.v1.KVService/Get"):
            info = Cp.MethodInfo.new(procedure, Cp.MethodKind.UNARY,
                                     Kv.GetRequest.__gtype__, Kv.GetResponse.__gtype__)
            rpc.add_method(info, self.echo)
        self.url = self.server.listen("127.0.0.1:0")

    @staticmethod
    def echo(invocation, request):
        auth = invocation.get_request_headers().get_one("Authorization")
        text = "%s %s" % (invocation.get_procedure(), auth)
        invocation.return_message(Kv.GetResponse(found=True, value=GLib.Bytes(text.encode())))


class PlatformTest(unittest.TestCase):
    def setUp(self):
        self.host = Host()
        self.plugin = Cp.Server.new()
        kv = Cp.Plugin.new("kv-plugin", "1.0.0")
        self.skeleton = Kv.KVServiceSkeleton()
        kv.add_service(self.skeleton)
        kv.add_provides("kv", "1.0.0", "/kv.v1.KVService/")
        self.plugin.add_plugin(kv)
        self.plugin.props.host_url = self.host.url
        self.plugin.props.self_id = "kv-plugin"
        self.failures = []
        self.plugin.connect("host-link-failed", lambda s, e: self.failures.append(e))

    def tearDown(self):
        self.plugin.close()
        self.host.server.close()

    def get(self, channel):
        proxy = Kv.KVServiceProxy.new(channel)
        box = run_async(self, lambda cb: proxy.call_get(Kv.GetRequest(key="k"), None, None, cb),
                        lambda src, res: Kv.KVServiceProxy.call_get_finish(src, res), "Get")
        self.assertNotIn("error", box)
        return box["value"].props.value.get_data().decode()

    def listen_and_register(self):
        self.plugin.listen("127.0.0.1:0")
        wait_until(self, lambda: self.plugin.props.host_registered or self.failures,
                   "the registration")
        self.assertEqual(self.failures, [])

    def test_register_request_capability_discover(self):
        self.listen_and_register()
        runtime_id = self.plugin.props.runtime_id
        token = self.plugin.props.runtime_token
        self.assertTrue(runtime_id.startswith("kv-plugin-"))
        self.assertEqual(self.host.registry.registered,
                         [("kv", "1.0.0", self.plugin.get_url())])
        self.assertEqual(self.host.lifecycle.states, [Cp.HealthState.HEALTHY])

        box = run_async(self, lambda cb: self.plugin.request_capability_async(
                            "kv", "1.0.0", "tests", None, cb),
                        lambda src, res: src.request_capability_finish(res), "grant")
        self.assertNotIn("error", box)
        grant_channel = box["value"]
        self.assertEqual(grant_channel.props.base_url, self.host.url + "/capabilities/kv/GRANT1")
        self.assertEqual(self.get(grant_channel),
                         "/capabilities/kv/GRANT1/kv.v1.KVService/Get Bearer grant-token")

        box = run_async(self, lambda cb: self.plugin.request_capability_async(
                            "secrets", None, None, None, cb),
                        lambda src, res: src.request_capability_finish(res), "refused grant")
        self.assertEqual(box["error"].code, int(Cp.Error.PERMISSION_DENIED))

        box = run_async(self, lambda cb: self.plugin.discover_service_async("kv", "1.0.0", None, cb),
                        lambda src, res: src.discover_service_finish(res), "discovery")
        self.assertNotIn("error", box)
        routed = box["value"]
        self.assertTrue(routed.props.method_only_paths)
        self.assertEqual(routed.props.base_url, "%s/services/kv/%s" % (self.host.url, PROVIDER))
        self.assertEqual(self.get(routed), "/services/kv/%s/Get Bearer %s" % (PROVIDER, token))

        self.plugin.set_health(Cp.HealthState.DEGRADED, "testing", None)
        wait_until(self, lambda: len(self.host.lifecycle.states) == 2, "the health report")
        self.assertEqual(self.host.lifecycle.states[1], Cp.HealthState.DEGRADED)

    def test_watch_service(self):
        self.listen_and_register()
        watch = self.plugin.watch_service("kv")
        changes = []
        watch.connect("changed", lambda w, state, endpoint:
                      changes.append((state, endpoint.props.provider_id)))
        wait_until(self, lambda: changes, "the first watch event")
        self.assertEqual(changes, [(Cp.ServiceState.AVAILABLE, PROVIDER)])
        self.assertEqual(watch.props.state, Cp.ServiceState.AVAILABLE)
        self.assertEqual(watch.props.endpoint.props.endpoint_url, "/services/kv/" + PROVIDER)
        watch.cancel()
        self.assertFalse(watch.props.active)
        self.host.registry.watch.return_ok()

    def test_channel_headers(self):
        channel = Cp.Channel.new(self.host.url + "/capabilities/kv/GRANT1")
        channel.set_header("Authorization", "Bearer from-python")
        self.assertEqual(self.get(channel),
                         "/capabilities/kv/GRANT1/kv.v1.KVService/Get Bearer from-python")
        channel.set_header("Authorization", None)
        self.assertEqual(self.get(channel), "/capabilities/kv/GRANT1/kv.v1.KVService/Get None")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
