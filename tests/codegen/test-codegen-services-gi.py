#!/usr/bin/python3
# test-codegen-services-gi.py: the KV service's generated Proxy and Skeleton
# through GObject-Introspection: a Python Skeleton subclass serving on a real
# server, a Python proxy calling it asynchronously from the same main loop.
# SPDX-License-Identifier: LGPL-2.1-or-later

import unittest

import gi
gi.require_version('ConnectPlugin', '1.0')
gi.require_version('Kv', '1.0')
from gi.repository import ConnectPlugin, GLib, Kv  # noqa: E402


class PyKV(Kv.KVServiceSkeleton):
    """A KV store in Python: overrides the virtual methods."""

    def __init__(self):
        super().__init__()
        self.store = {}
        self.watchers = []

    def do_handle_get(self, invocation, request):
        key = request.props.key
        if key == 'forbidden':
            invocation.return_error_literal(ConnectPlugin.Error.PERMISSION_DENIED,
                                            'no access to ' + key)
            return True
        value = self.store.get(key)
        response = Kv.GetResponse(found=value is not None,
                                  value=GLib.Bytes.new(value or b''))
        self.complete_get(invocation, response)
        return True

    def do_handle_put(self, invocation, request):
        key, value = request.props.key, request.props.value.get_data()
        self.store[key] = value
        for watcher, prefix in self.watchers:
            if key.startswith(prefix):
                event = Kv.WatchEvent(type=Kv.EventType.PUT, key=key,
                                      value=GLib.Bytes.new(value))
                watcher.send_message(event)
        self.complete_put(invocation, Kv.PutResponse())
        return True

    def do_handle_watch(self, invocation, request):
        self.watchers.append((invocation, request.props.prefix))
        return True

    # Delete is not overridden: unimplemented.


def error_code(error):
    assert error.domain == GLib.quark_to_string(ConnectPlugin.error_quark()), error.domain
    return ConnectPlugin.Error(error.code)


class ServiceFromPython(unittest.TestCase):
    def setUp(self):
        self.server = ConnectPlugin.RpcServer.new()
        self.skeleton = PyKV()
        self.assertTrue(self.skeleton.export(self.server))
        url = self.server.listen('127.0.0.1:0')
        self.channel = ConnectPlugin.Channel.new(url)
        self.proxy = Kv.KVServiceProxy.new(self.channel)
        self.loop = GLib.MainLoop()

    def tearDown(self):
        self.skeleton.unexport()
        self.server.close()

    def call(self, method, request):
        """Calls a unary method asynchronously and runs the loop until done."""
        results = []

        def done(proxy, result, user_data):
            try:
                results.append(getattr(proxy, 'call_%s_finish' % method)(result))
            except GLib.Error as e:
                results.append(e)
            self.loop.quit()

        getattr(self.proxy, 'call_' + method)(request, None, None, done, None)
        self.loop.run()
        if isinstance(results[0], Exception):
            raise results[0]
        return results[0]

    def test_types(self):
        self.assertIsInstance(self.proxy, Kv.KVServiceProxy)
        self.assertIsInstance(self.proxy, ConnectPlugin.Proxy)
        self.assertIsInstance(self.proxy, Kv.KVService)
        self.assertIsInstance(self.skeleton, ConnectPlugin.Skeleton)
        self.assertIsInstance(self.skeleton, Kv.KVService)
        self.assertTrue(self.skeleton.is_exported())
        d = Kv.KVService.get_descriptor()
        self.assertEqual(d.get_full_name(), 'kv.v1.KVService')
        self.assertEqual(d.get_path(), '/kv.v1.KVService/')
        self.assertEqual([m.get_method_name() for m in d.get_methods()],
                         ['Get', 'Put', 'Delete', 'Watch'])
        self.assertEqual(d.lookup_method('Get').get_idempotency(),
                         ConnectPlugin.Idempotency.NO_SIDE_EFFECTS)
        self.assertEqual(d.get_proxy_type(), Kv.KVServiceProxy.__gtype__)
        self.assertEqual(self.proxy.get_descriptor().get_full_name(), 'kv.v1.KVService')
        self.assertEqual(self.proxy.props.channel, self.channel)

    def test_unary(self):
        missing = self.call('get', Kv.GetRequest(key='a'))
        self.assertIsInstance(missing, Kv.GetResponse)
        self.assertFalse(missing.props.found)
        put = self.call('put', Kv.PutRequest(key='a', value=GLib.Bytes.new(b'\x00py')))
        self.assertIsInstance(put, Kv.PutResponse)
        self.assertEqual(self.skeleton.store, {'a': b'\x00py'})
        got = self.call('get', Kv.GetRequest(key='a'))
        self.assertTrue(got.props.found)
        self.assertEqual(got.props.value.get_data(), b'\x00py')

    def test_error(self):
        with self.assertRaises(GLib.Error) as cm:
            self.call('get', Kv.GetRequest(key='forbidden'))
        self.assertEqual(error_code(cm.exception), ConnectPlugin.Error.PERMISSION_DENIED)
        self.assertIn('no access to forbidden', cm.exception.message)

    def test_unimplemented(self):
        with self.assertRaises(GLib.Error) as cm:
            self.call('delete', Kv.DeleteRequest(key='a'))
        self.assertEqual(error_code(cm.exception), ConnectPlugin.Error.UNIMPLEMENTED)

    def test_signal_handler_first(self):
        # A connected handler runs before the overridden virtual method.
        seen = []

        def on_get(skeleton, invocation, request):
            seen.append(request.props.key)
            if request.props.key != 'signal':
                return False
            skeleton.complete_get(invocation, Kv.GetResponse(found=True,
                                                             value=GLib.Bytes.new(b'sig')))
            return True

        self.skeleton.connect('handle-get', on_get)
        got = self.call('get', Kv.GetRequest(key='signal'))
        self.assertEqual(got.props.value.get_data(), b'sig')
        got = self.call('get', Kv.GetRequest(key='other'))
        self.assertFalse(got.props.found)
        self.assertEqual(seen, ['signal', 'other'])

    def test_watch(self):
        events, closed = [], []
        stream = self.proxy.call_watch(Kv.WatchRequest(prefix='k/'), None)
        stream.connect('message', lambda s, m: events.append(m))

        def on_closed(s, error):
            closed.append(error)
            self.loop.quit()

        stream.connect('closed', on_closed)
        ctx = GLib.MainContext.default()
        while not self.skeleton.watchers:
            ctx.iteration(True)
        self.call('put', Kv.PutRequest(key='k/1', value=GLib.Bytes.new(b'one')))
        self.call('put', Kv.PutRequest(key='x/2', value=GLib.Bytes.new(b'two')))
        self.call('put', Kv.PutRequest(key='k/3', value=GLib.Bytes.new(b'three')))
        while len(events) < 2:
            ctx.iteration(True)
        invocation, _ = self.skeleton.watchers.pop()
        invocation.return_ok()
        self.loop.run()
        self.assertEqual(closed, [None])
        self.assertTrue(all(isinstance(e, Kv.WatchEvent) for e in events))
        self.assertEqual([(e.props.type, e.props.key, e.props.value.get_data()) for e in events],
                         [(Kv.EventType.PUT, 'k/1', b'one'), (Kv.EventType.PUT, 'k/3', b'three')])


class PlainSkeletonFromPython(unittest.TestCase):
    def test_signals_only(self):
        server = ConnectPlugin.RpcServer.new()
        skeleton = Kv.KVServiceSkeleton.new()

        def on_get(skel, invocation, request):
            skel.complete_get(invocation, Kv.GetResponse(found=True))
            return True

        skeleton.connect('handle-get', on_get)
        skeleton.export(server)
        proxy = Kv.KVServiceProxy.new(ConnectPlugin.Channel.new(server.listen('127.0.0.1:0')))
        loop = GLib.MainLoop()
        results = []

        def done(p, res, _):
            results.append(p.call_get_finish(res))
            loop.quit()

        proxy.call_get(Kv.GetRequest(key='k'), None, None, done, None)
        loop.run()
        self.assertTrue(results[0].props.found)
        skeleton.unexport()
        server.close()


if __name__ == '__main__':
    unittest.main(verbosity=2)
