#!/usr/bin/python3
"""Client-side metrics from Python, through GObject-Introspection.

The README's "Metrics (Prometheus)" snippet, run for real: a CpClient
connected to examples/kv/kv-plugin (launched by CpProcessDiscovery) with a
circuit breaker, added to the host's own CpServer with
add_metrics_to_server(); calls through the dispensed Kv proxy are counted,
and the host's /metrics (fetched over HTTP from a helper thread while this
thread serves) and client.render_metrics() carry the client families with
the plugin label, its health and its circuit state.

Run with Debian's /usr/bin/python3 (PyGObject); meson sets GI_TYPELIB_PATH,
LD_LIBRARY_PATH and KV_PLUGIN.
"""
import os
import threading
import unittest
import urllib.request

import gi

gi.require_version("ConnectPlugin", "1.0")
gi.require_version("Kv", "1.0")
gi.require_version("GLib", "2.0")
from gi.repository import ConnectPlugin as Cp  # noqa: E402
from gi.repository import GLib, Kv  # noqa: E402

KV_PLUGIN = os.environ.get("KV_PLUGIN")
GUARD_S = 10  # failure guard of every wait, never a synchronisation


def wait_until(test, condition, what):
    context = GLib.MainContext.default()
    expired = []
    source = GLib.timeout_add_seconds(GUARD_S, lambda: expired.append(True) or False)
    while not condition() and not expired:
        context.iteration(True)
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
    test.assertNotIn("error", box, box.get("error") and box["error"].message)
    return box["value"]


def samples(text):
    """{'name{labels}': value} of an exposition's samples."""
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


class ClientMetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (KV_PLUGIN and os.access(KV_PLUGIN, os.X_OK)):
            raise AssertionError("KV_PLUGIN (%r) does not name the kv-plugin executable"
                                 % KV_PLUGIN)

    def tearDown(self):
        client, host = getattr(self, "client", None), getattr(self, "host", None)
        if client is not None and client.get_state() != Cp.ClientState.CLOSED:
            run_async(self, lambda cb: client.close_async(None, cb),
                      lambda src, res: src.close_finish(res), "close")
        if host is not None:
            host.close()

    def fetch(self, url):
        """GET url from a helper thread while this thread serves it."""
        box = {}

        def get():
            with urllib.request.urlopen(url, timeout=GUARD_S) as response:
                box["type"] = response.headers.get("Content-Type")
                box["text"] = response.read().decode()

        thread = threading.Thread(target=get)
        thread.start()
        wait_until(self, lambda: not thread.is_alive(), "GET " + url)
        thread.join()
        return box

    def test_readme_snippet(self):
        discovery = Cp.ProcessDiscovery(argv=[KV_PLUGIN], name="kv")

        # --- the README's snippet ---
        client = Cp.Client.new_for_discovery(discovery)   # or Cp.Client.new(url)
        client.set_plugins(["kv"])                        # the `plugin` label: "kv"
        retry = Cp.RetryPolicy.new()
        client.set_retry_policy(retry)
        breaker = Cp.CircuitBreaker.new()
        client.set_circuit_breaker(breaker)
        host = Cp.Server.new()
        client.add_metrics_to_server(host)   # turns metrics on for both
        host.start()
        url = host.listen("127.0.0.1:0")     # /metrics: connectplugin_server_* and _client_*
        # --- end of the snippet ---
        self.client, self.host = client, host

        self.assertTrue(client.props.metrics_enabled)
        run_async(self, lambda cb: client.connect_async(None, cb),
                  lambda src, res: src.connect_finish(res), "connect")
        kv = client.dispense("kv", Kv.KVServiceProxy.__gtype__)
        for _ in range(3):
            run_async(self, lambda cb: kv.call_get(Kv.GetRequest(key="k"), None, None, cb),
                      lambda src, res: Kv.KVServiceProxy.call_get_finish(src, res), "Get")

        got = self.fetch(url + "/metrics")
        self.assertTrue(got["type"].startswith("text/plain; version=0.0.4"))
        exposed = samples(got["text"])
        labels = 'plugin="kv",service="kv.v1.KVService",method="Get"'
        self.assertEqual(exposed['connectplugin_client_calls_total{%s,code="ok"}' % labels], 3)
        self.assertEqual(exposed["connectplugin_client_calls_started_total{%s}" % labels], 3)
        self.assertEqual(exposed["connectplugin_client_call_duration_seconds_count{%s}"
                                 % labels], 3)
        self.assertEqual(exposed['connectplugin_client_plugin_health{plugin="kv",'
                                 'state="healthy"}'], 1)
        self.assertEqual(exposed['connectplugin_client_circuit_state{plugin="kv",'
                                 'state="closed"}'], 1)
        # One declaration per family in the whole exposition.
        types = [line.split()[2] for line in got["text"].splitlines()
                 if line.startswith("# TYPE ")]
        self.assertEqual(len(types), len(set(types)))
        self.assertIn("connectplugin_server_calls_total", types)
        self.assertIn("connectplugin_client_retries_total", types)
        self.assertEqual(retry.props.n_retries, 0)

        # The same client families, for an application serving them itself.
        text = client.render_metrics()
        self.assertEqual(samples(text)['connectplugin_client_calls_total{%s,code="ok"}'
                                       % labels], 3)
        self.assertNotIn("connectplugin_server_calls_total", text)

        client.props.metrics_label = "kv-main"
        self.assertIn('plugin="kv-main"', client.render_metrics())


if __name__ == "__main__":
    unittest.main(verbosity=2)
