#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Python host written with async def: ConnectPlugin's async calls
awaited from asyncio (connectplugin.aio, the overrides' futures).

Against examples/kv/kv-plugin (KV_PLUGIN) launched by a
CpProcessDiscovery: CpClient.connect_async/close_async, the generated
proxy's unary calls, CpChannel.call_async, a Connect error caught as a
ConnectError with its code, a Watch stream iterated with async for,
an asyncio cancellation reaching the call's GCancellable; and the README's
"Using it from Python" asyncio example, run as written there.

Run with Debian's /usr/bin/python3 (PyGObject 3.42, no asyncio support of
its own); meson puts the in-tree bindings/python on PYTHONPATH. Every wait
is an await; asyncio.wait_for's timeout is only a failure guard.
"""
import asyncio
import os
import re
import subprocess
import sys
import unittest

import gi

gi.require_version("ConnectPlugin", "1.0")
gi.require_version("Kv", "1.0")
from gi.repository import ConnectPlugin as Cp  # noqa: E402
from gi.repository import Gio, GLib, Kv  # noqa: E402

from connectplugin import ConnectError, aio  # noqa: E402

KV_PLUGIN = os.environ.get("KV_PLUGIN")
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
GUARD_S = 20  # failure guard, never a synchronisation


def guarded(coroutine):
    return asyncio.wait_for(coroutine, GUARD_S)


class AsyncHostTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Not a skip: under meson a missing plugin must fail the test.
        if not (KV_PLUGIN and os.access(KV_PLUGIN, os.X_OK)):
            raise AssertionError("KV_PLUGIN (%r) does not name the kv-plugin executable"
                                 % KV_PLUGIN)

    def run_host(self, host):
        """Runs host(client) on connectplugin.aio's loop with a launched kv-plugin,
        closing the client whatever happens."""
        discovery = Cp.ProcessDiscovery(argv=[KV_PLUGIN], name="kv")
        client = Cp.Client.new_for_discovery(discovery)
        client.set_plugins(["kv"])

        async def main():
            try:
                await guarded(host(client))
            finally:
                if client.get_state() != Cp.ClientState.CLOSED:
                    await guarded(client.close_async())
            return discovery

        return aio.run(main())

    def test_host(self):
        states = []

        async def host(client):
            client.connect("notify::state", lambda c, pspec: states.append(c.props.state))
            # CpClient.connect_async without a callback: a future.
            pending = client.connect_async()
            self.assertIsInstance(pending, asyncio.Future)
            self.assertTrue(await pending)
            self.assertEqual(client.get_state(), Cp.ClientState.READY)
            self.assertEqual(states, [Cp.ClientState.CONNECTING, Cp.ClientState.CONNECTED,
                                      Cp.ClientState.READY])

            kv = client.dispense("kv", Kv.KVServiceProxy.__gtype__)
            # Put and Get through the generated proxy, bytes for the GBytes.
            self.assertIsInstance(await kv.call_put(Kv.PutRequest(key="a", value=b"1")),
                                  Kv.PutResponse)
            reply = await kv.call_get(Kv.GetRequest(key="a"))
            self.assertIsInstance(reply, Kv.GetResponse)
            self.assertTrue(reply.props.found)
            self.assertEqual(reply.props.value.get_data(), b"1")
            # The options and cancellable positions still take values.
            cancellable = Gio.Cancellable()
            reply = await kv.call_get(Kv.GetRequest(key="a"), None, cancellable)
            self.assertTrue(reply.props.found)
            reply = await kv.call_get(Kv.GetRequest(key="a"), cancellable=cancellable)
            self.assertTrue(reply.props.found)
            # The helper spelling, and several calls at once.
            reply = await aio.call(kv.call_get, Kv.GetRequest(key="none"))
            self.assertFalse(reply.props.found)
            replies = await asyncio.gather(*(kv.call_get(Kv.GetRequest(key=k))
                                             for k in ("a", "b", "a")))
            self.assertEqual([r.props.found for r in replies], [True, False, True])

            # A callback still means the GIO way.
            done = asyncio.get_running_loop().create_future()
            self.assertIsNone(kv.call_get(Kv.GetRequest(key="a"), None, None,
                                          lambda src, res: done.set_result(
                                              src.call_get_finish(res))))
            self.assertTrue((await done).props.found)

            # CpChannel.call_async, the generic unary call.
            reply = await client.get_channel().call_async(
                "/kv.v1.KVService/Get", Kv.GetRequest(key="a"), Kv.GetResponse.__gtype__, None)
            self.assertIsInstance(reply, Kv.GetResponse)
            self.assertEqual(reply.props.value.get_data(), b"1")

            # The plugin's error: a ConnectError carrying the code.
            with self.assertRaises(ConnectError) as cm:
                await kv.call_put(Kv.PutRequest(key="", value=b""))
            self.assertEqual(cm.exception.code, Cp.Error.INVALID_ARGUMENT)
            self.assertIs(type(cm.exception.code), Cp.Error)
            self.assertEqual(cm.exception.code_name, "invalid_argument")
            self.assertIsInstance(cm.exception, GLib.Error)
            # The host's own: an unknown plugin, not_found.
            with self.assertRaises(ConnectError) as cm:
                client.dispense("nope", Kv.KVServiceProxy.__gtype__)
            self.assertEqual(cm.exception.code, Cp.Error.NOT_FOUND)
            self.assertEqual(cm.exception.code_name, "not_found")

            # An asyncio cancellation cancels the call's GCancellable: of
            # the future itself, and of a task awaiting it.
            cancellable = Gio.Cancellable()
            future = kv.call_get(Kv.GetRequest(key="a"), None, cancellable)
            future.cancel()
            self.assertTrue(cancellable.is_cancelled())
            with self.assertRaises(asyncio.CancelledError):
                await future
            cancellable = Gio.Cancellable()
            task = asyncio.ensure_future(aio.call(kv.call_get, Kv.GetRequest(key="a"),
                                                  cancellable=cancellable))
            await asyncio.sleep(0)
            self.assertFalse(cancellable.is_cancelled())
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            self.assertTrue(cancellable.is_cancelled())
            # ... and the plugin still answers.
            self.assertTrue((await kv.call_get(Kv.GetRequest(key="a"))).props.found)

            # close_async: the plugin is asked to shut down.
            self.assertTrue(await client.close_async())
            self.assertEqual(client.get_state(), Cp.ClientState.CLOSED)

        discovery = self.run_host(host)
        self.assertEqual(discovery.get_state(), Cp.ProcessState.STOPPED)

    def test_watch_stream(self):
        async def host(client):
            await client.connect_async()
            kv = client.dispense("kv", Kv.KVServiceProxy.__gtype__)
            watch = aiter(kv.call_watch(Kv.WatchRequest(prefix="watched/"), None))
            self.assertIsInstance(watch, Cp.ResponseStreamIterator)
            await watch.headers()  # the watch is in place
            await kv.call_put(Kv.PutRequest(key="watched/a", value=b"1"))
            await kv.call_put(Kv.PutRequest(key="other/x", value=b"no"))
            await kv.call_put(Kv.PutRequest(key="watched/b", value=b"2"))
            await kv.call_delete(Kv.DeleteRequest(key="watched/a"))
            events = []
            async for event in watch:
                events.append((event.props.type, event.props.key,
                               event.props.value.get_data() or b""))
                if len(events) == 3:
                    break
            self.assertEqual(events, [
                (Kv.EventType.PUT, "watched/a", b"1"),
                (Kv.EventType.PUT, "watched/b", b"2"),
                (Kv.EventType.DELETE, "watched/a", b""),
            ])
            # Our own cancel ends the iteration without an error.
            watch.cancel()
            self.assertEqual([e async for e in watch], [])

            # A stream the server refuses: the ConnectError comes out of async for.
            stream = client.get_channel().call_server_stream(
                "/kv.v1.KVService/Nope", Kv.WatchRequest(), Kv.WatchEvent.__gtype__, None)
            with self.assertRaises(ConnectError) as cm:
                async for _ in stream:
                    pass
            self.assertEqual(cm.exception.code, Cp.Error.UNIMPLEMENTED)
            self.assertEqual(cm.exception.code_name, "unimplemented")

        self.run_host(host)

    def test_not_on_a_glib_loop(self):
        # On asyncio's own loop nothing would iterate GLib: a clear error.
        client = Cp.Client.new("http://127.0.0.1:1")

        async def main():
            with self.assertRaises(RuntimeError) as cm:
                client.connect_async()
            self.assertIn("connectplugin.aio", str(cm.exception))

        asyncio.run(main())

    def test_policy(self):
        # asyncio.run() under the policy runs on the GLib loop.
        asyncio.set_event_loop_policy(aio.GLibEventLoopPolicy())
        try:
            async def main():
                loop = asyncio.get_running_loop()
                self.assertIsInstance(loop, aio.GLibEventLoop)
                # A GLib source and an asyncio timer both fire.
                fired = loop.create_future()
                GLib.idle_add(lambda: fired.set_result("glib") and False)
                self.assertEqual(await fired, "glib")
                await asyncio.sleep(0.01)
                return "done"
            self.assertEqual(asyncio.run(main()), "done")
        finally:
            asyncio.set_event_loop_policy(None)


class ReadmeExampleTest(unittest.TestCase):
    def test_readme_asyncio_example(self):
        with open(README, encoding="utf-8") as f:
            blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
        examples = [b for b in blocks if "aio.run(" in b]
        self.assertEqual(len(examples), 1, "one asyncio example in README.md")
        result = subprocess.run([sys.executable, "-c", examples[0], KV_PLUGIN],
                                capture_output=True, text=True, timeout=GUARD_S * 3)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), [
            "True b'hello'",
            "invalid_argument True",
            "put greeting",
        ], result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
