#!/usr/bin/python3
"""The etcd registry and discovery from Python through GObject-Introspection.

A real etcd (Debian's etcd-server, /usr/bin/etcd or $CP_ETCD) on free
127.0.0.1 ports with a temporary data directory, stopped by PID at the
end: ConnectPlugin.EtcdRegistration registers an endpoint, an
EtcdDiscovery built with properties (as PyGObject users write it) finds
it, emits `changed` when it is revoked, and discover_async/finish answers
`unavailable` afterwards; an EtcdRegistry (the broker's registry in etcd)
starts and stops. Exits 77 (skip) without etcd.

Nothing sleeps: every wait iterates the main context until a condition
holds, with a timeout only as a failure guard.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import gi

gi.require_version("ConnectPlugin", "1.0")
gi.require_version("GLib", "2.0")
from gi.repository import ConnectPlugin as Cp  # noqa: E402
from gi.repository import GLib  # noqa: E402

ETCD = os.environ.get("CP_ETCD") or "/usr/bin/etcd"


def die_with_parent():
    """etcd gets SIGKILL if this test dies first (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, seconds=60):
    context = GLib.MainContext.default()
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        context.iteration(True) if context.pending() else time.sleep(0.01)


class EtcdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cp-etcd-py-")
        client, peer = free_port(), free_port()
        cls.url = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        cls.log = open(os.path.join(cls.dir, "etcd.log"), "wb")
        cls.etcd = subprocess.Popen(
            [ETCD, "--name", "t", "--data-dir", os.path.join(cls.dir, "data"),
             "--listen-client-urls", cls.url, "--advertise-client-urls", cls.url,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", f"t={peer_url}", "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=cls.log, preexec_fn=die_with_parent)
        end = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(cls.url + "/v3/kv/range", data=b'{"key":"AA=="}')
                urllib.request.urlopen(request, timeout=1).read()
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.etcd.kill()
        cls.etcd.wait()
        cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_register_discover_revoke(self):
        registration = Cp.EtcdRegistration(endpoints=[self.url], prefix="/py/", name="kv",
                                           url="http://127.0.0.1:7100", ttl=5, version="2.0.0")
        self.assertTrue(registration.get_key().startswith("/py/kv/"))
        results = []
        registration.register_async(None, lambda o, r: results.append(o.register_finish(r)))
        wait_until(lambda: results)
        self.assertTrue(results[0])
        self.assertTrue(registration.props.registered)

        discovery = Cp.EtcdDiscovery(endpoints=[self.url], prefix="/py/", plugin_name="kv")
        answers = []
        discovery.discover_async(["kv"], None,
                                 lambda o, r: answers.append(o.discover_finish(r)))
        wait_until(lambda: answers)
        self.assertEqual(answers[0], ["http://127.0.0.1:7100"])
        self.assertGreater(discovery.get_revision(), 0)

        changes = []
        discovery.connect("changed", lambda d: changes.append(d.get_urls()))
        revoked = []
        registration.revoke_async(None, lambda o, r: revoked.append(o.revoke_finish(r)))
        wait_until(lambda: revoked and changes)
        self.assertEqual(changes[-1], [])

        errors = []

        def done(source, result):
            try:
                source.discover_finish(result)
            except GLib.Error as error:
                errors.append(error)

        discovery.discover_async(["kv"], None, done)
        wait_until(lambda: errors)
        self.assertEqual(errors[0].code, Cp.Error.UNAVAILABLE)

    def test_registry_start_stop(self):
        """CpEtcdRegistry built from properties: refused without TLS
        credentials, then started with a self-signed host certificate (its
        own CA) made by openssl, and stopped."""
        server = Cp.Server.new()
        broker = Cp.Broker.new(server)
        registry = Cp.EtcdRegistry(broker=broker, endpoints=[self.url], prefix="/py-reg/",
                                   ttl=5)
        self.assertEqual(registry.props.prefix, "/py-reg/")
        self.assertTrue(registry.get_host_id())
        self.assertIsNone(registry.get_peer_url())

        errors = []

        def failed(source, result):
            try:
                source.start_finish(result)
            except GLib.Error as error:
                errors.append(error)

        registry.start_async("127.0.0.1:0", None, failed)
        wait_until(lambda: errors)
        self.assertEqual(errors[0].code, Cp.Error.INVALID_ARGUMENT)

        openssl = shutil.which("openssl")
        if openssl is None:
            self.skipTest("no openssl to make a host certificate")
        cert = os.path.join(self.dir, "host.pem")
        key = os.path.join(self.dir, "host.key")
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=host-py",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
                        "-keyout", key, "-out", cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        registry = Cp.EtcdRegistry(broker=broker, endpoints=[self.url], prefix="/py-reg/",
                                   host_id="host-py", trusted_peers=["CN=host-b"])
        self.assertTrue(registry.set_tls_files(cert, key, cert))
        self.assertEqual(registry.props.trusted_peers, ["CN=host-b"])
        started = []
        registry.start_async("127.0.0.1:0", None,
                             lambda o, r: started.append(o.start_finish(r)))
        wait_until(lambda: started)
        self.assertTrue(started[0])
        self.assertTrue(registry.props.registered)
        self.assertTrue(registry.get_peer_url().startswith("https://127.0.0.1:"))
        stopped = []
        registry.stop_async(None, lambda o, r: stopped.append(o.stop_finish(r)))
        wait_until(lambda: stopped)
        self.assertTrue(stopped[0])
        self.assertFalse(registry.props.registered)


if __name__ == "__main__":
    if not os.access(ETCD, os.X_OK):
        print(f"SKIP: no etcd at {ETCD} (Debian's etcd-server, or set CP_ETCD)")
        sys.exit(77)
    unittest.main()
