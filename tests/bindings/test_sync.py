#!/usr/bin/python3
"""Blocking calls from Python with no main loop running (issue 12, item 1).

A script calls the generated proxy's call_put_sync()/call_get_sync() in a
loop and never runs a GLib main loop. Calls 1-64 used to leave their
connection in use (libsoup finishes a message from the context it was sent
from, and the sync call's private context was not run any more); call 65
waited for a connection for ever.

- examples/kv/kv-server (KV_SERVER) as a child process, called through
  ConnectPlugin.Channel and the generated Kv.KVServiceProxy: 10,000 calls;
- examples/kv/kv-plugin (KV_PLUGIN) launched by CpProcessDiscovery,
  connected with CpClient.connect_sync(), called through the dispensed
  proxy: 2,000 calls.

The server's open connections are counted from its /proc/PID/fd sockets:
they must stay within a small constant of what it had before the calls.
Every call has a 10 s deadline (the channel's timeout-ms): a hang guard, so
a call that would wait for ever fails instead.

Run with Debian's /usr/bin/python3 (PyGObject); meson sets GI_TYPELIB_PATH,
LD_LIBRARY_PATH, KV_SERVER and KV_PLUGIN.
"""
import os
import subprocess
import sys
import threading
import unittest

import gi

gi.require_version("ConnectPlugin", "1.0")
gi.require_version("Kv", "1.0")
gi.require_version("GLib", "2.0")
from gi.repository import ConnectPlugin as Cp  # noqa: E402
from gi.repository import GLib, Kv  # noqa: E402

KV_SERVER = os.environ.get("KV_SERVER")
KV_PLUGIN = os.environ.get("KV_PLUGIN")
HANG_GUARD_MS = 10000
# Connections a sequential caller may add: the one in use, and one the
# server has not finished closing.
MAX_EXTRA_SOCKETS = 2


def count_sockets(pid):
    n = 0
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)).startswith("socket:"):
                n += 1
        except OSError:
            pass  # closed meanwhile
    return n


def put_get_loop(test, kv, n, pid, baseline):
    most = baseline
    for i in range(n):
        key = "k%d" % (i // 2 % 100)
        if i % 2 == 0:
            kv.call_put_sync(Kv.PutRequest(key=key, value=GLib.Bytes(b"v%d" % i)), None, None)
        else:
            reply = kv.call_get_sync(Kv.GetRequest(key=key), None, None)
            test.assertTrue(reply.props.found)
            test.assertEqual(reply.props.value.get_data(), b"v%d" % (i - 1))
        if i % 10 == 9:
            sockets = count_sockets(pid)
            most = max(most, sockets)
            test.assertLessEqual(sockets, baseline + MAX_EXTRA_SOCKETS,
                                 "after %d calls the server holds %d sockets (%d before)"
                                 % (i + 1, sockets, baseline))
    print("%d sync calls: at most %d server sockets (%d before)" % (n, most, baseline),
          file=sys.stderr)


class KvServerSyncTest(unittest.TestCase):
    def setUp(self):
        if not (KV_SERVER and os.access(KV_SERVER, os.X_OK)):
            raise AssertionError("KV_SERVER (%r) does not name the kv-server executable"
                                 % KV_SERVER)
        self.server = subprocess.Popen([KV_SERVER, "--listen", "127.0.0.1:0"],
                                       stdout=subprocess.PIPE, text=True)
        self.url = self.server.stdout.readline().strip()
        self.assertTrue(self.url.startswith("http://127.0.0.1:"), self.url)
        # kv-server logs every operation to stdout: keep the pipe drained.
        self.drain = threading.Thread(target=self.server.stdout.read, daemon=True)
        self.drain.start()

    def tearDown(self):
        self.server.kill()
        self.server.wait()
        self.drain.join()
        self.server.stdout.close()

    def test_sequential_sync_calls(self):
        channel = Cp.Channel.new(self.url)
        channel.props.timeout_ms = HANG_GUARD_MS
        kv = Kv.KVServiceProxy.new(channel)
        put_get_loop(self, kv, 10000, self.server.pid, count_sockets(self.server.pid))


class KvPluginSyncTest(unittest.TestCase):
    def setUp(self):
        if not (KV_PLUGIN and os.access(KV_PLUGIN, os.X_OK)):
            raise AssertionError("KV_PLUGIN (%r) does not name the kv-plugin executable"
                                 % KV_PLUGIN)
        self.discovery = Cp.ProcessDiscovery(argv=[KV_PLUGIN], name="kv")
        self.client = Cp.Client.new_for_discovery(self.discovery)
        self.client.set_plugins(["kv"])
        self.client.props.call_timeout_ms = HANG_GUARD_MS

    def tearDown(self):
        # The only waits that run the main loop: shutting the plugin down.
        context = GLib.MainContext.default()
        box = []
        self.client.close_async(None, lambda *a: box.append(True))
        guard = GLib.timeout_add_seconds(10, lambda: box.append(False))
        while not box:
            context.iteration(True)
        if box[0]:
            GLib.source_remove(guard)
        if self.discovery.get_state() not in (Cp.ProcessState.STOPPED, Cp.ProcessState.EXITED):
            done = []
            self.discovery.stop_async(None, lambda *a: done.append(True))
            guard = GLib.timeout_add_seconds(10, lambda: done.append(False))
            while not done:
                context.iteration(True)
            if done[0]:
                GLib.source_remove(guard)

    def test_client_connect_sync_then_sync_calls(self):
        self.assertTrue(self.client.connect_sync(None))
        self.assertEqual(self.client.get_state(), Cp.ClientState.READY)
        kv = self.client.dispense("kv", Kv.KVServiceProxy.__gtype__)
        pid = self.discovery.get_pid()
        self.assertGreater(pid, 0)
        put_get_loop(self, kv, 2000, pid, count_sockets(pid))


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=[sys.argv[0]])
