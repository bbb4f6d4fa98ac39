#!/usr/bin/python3
# kv_server.py [--listen ADDRESS]: the KV service (kv.v1.KVService) in Python,
# a subclass of the generated Kv.KVServiceSkeleton overriding its virtual
# methods. Prints the URL it serves as the first line of stdout and logs
# each call at debug level (G_MESSAGES_DEBUG=kv shows them), like
# kv-server.c; SIGINT/SIGTERM stop it.
# SPDX-License-Identifier: LGPL-2.1-or-later
import argparse
import collections
import signal

import gi
gi.require_version('ConnectPlugin', '1.0')
gi.require_version('Kv', '1.0')
from gi.repository import ConnectPlugin, GLib, GObject, Kv  # noqa: E402


# Events a slow watcher may have waiting, in bytes: past this its watch
# ends with resource_exhausted instead of buffering without bound.
WATCH_MAX_PENDING_BYTES = 4 * 1024 * 1024


def log(level, line):
    """A GLib log record in the domain "kv" (g_debug () and g_message () in C)."""
    GLib.log_variant('kv', level, GLib.Variant('a{sv}', {'MESSAGE': GLib.Variant('s', line)}))


def debug(line):
    log(GLib.LogLevelFlags.LEVEL_DEBUG, line)


def message(line):
    log(GLib.LogLevelFlags.LEVEL_MESSAGE, line)


class Watcher:
    """One open Watch: events go out one at a time with send_message_async,
    which waits while the client is slow; the others wait in pending."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.pending = collections.deque()  # (event, size)
        self.pending_bytes = 0
        self.sending = False


class PyKV(Kv.KVServiceSkeleton):
    def __init__(self):
        super().__init__()
        self.store = {}     # key → bytes
        self.watchers = {}  # CpInvocation → Watcher

    def do_handle_get(self, invocation, request):
        value = self.store.get(request.props.key)
        debug(f'get {request.props.key} → {"found" if value is not None else "not found"}')
        self.complete_get(invocation, Kv.GetResponse(found=value is not None,
                                                     value=GLib.Bytes(value or b'')))
        return True

    def do_handle_put(self, invocation, request):
        key, value = request.props.key, request.props.value.get_data() or b''
        if not key:
            invocation.return_error_literal(ConnectPlugin.Error.INVALID_ARGUMENT,
                                            'key must not be empty')
            return True
        debug(f'put {key} ({len(value)} bytes)')
        self.store[key] = value
        self.publish(Kv.EventType.PUT, key, value)
        self.complete_put(invocation, Kv.PutResponse())
        return True

    def do_handle_delete(self, invocation, request):
        key = request.props.key
        found = self.store.pop(key, None) is not None
        debug(f'delete {key} → {"found" if found else "not found"}')
        if found:
            self.publish(Kv.EventType.DELETE, key, b'')
        self.complete_delete(invocation, Kv.DeleteResponse(found=found))
        return True

    def do_handle_watch(self, invocation, request):
        debug(f'watch prefix="{request.props.prefix}"')
        cancellable = invocation.get_cancellable()
        if cancellable.is_cancelled():
            return True  # already over: the engine answers
        self.watchers[invocation] = Watcher(request.props.prefix)
        # GObject's connect (Gio.Cancellable.connect is g_cancellable_connect).
        GObject.Object.connect(cancellable, 'cancelled', self.on_watch_cancelled, invocation)
        invocation.send_headers()  # the caller knows the watch is in place
        return True

    def on_watch_cancelled(self, cancellable, invocation):
        debug('watch ended')
        self.watchers.pop(invocation, None)

    def publish(self, event_type, key, value):
        for invocation, watcher in list(self.watchers.items()):
            if not key.startswith(watcher.prefix):
                continue
            size = len(key) + len(value)
            if watcher.pending_bytes + size > WATCH_MAX_PENDING_BYTES:
                message('watch: the client does not keep up; ending its watch')
                del self.watchers[invocation]
                invocation.return_error_literal(ConnectPlugin.Error.RESOURCE_EXHAUSTED,
                                                'the watcher does not keep up with the changes')
                continue
            event = Kv.WatchEvent(type=event_type, key=key, value=GLib.Bytes(value))
            watcher.pending.append((event, size))
            watcher.pending_bytes += size
            self.send_next(invocation, watcher)

    def send_next(self, invocation, watcher):
        if watcher.sending or not watcher.pending or self.watchers.get(invocation) is not watcher:
            return
        event, size = watcher.pending.popleft()
        watcher.pending_bytes -= size
        watcher.sending = True
        invocation.send_message_async(event, None, self.on_event_sent, watcher)

    def on_event_sent(self, invocation, result, watcher):
        watcher.sending = False
        try:
            invocation.send_message_finish(result)
        except GLib.Error as e:
            message(f'watch: dropping events: {e.message}')
            return
        self.send_next(invocation, watcher)


def main():
    parser = argparse.ArgumentParser(description='serve kv.v1.KVService (Python)')
    parser.add_argument('--listen', '-l', default='127.0.0.1:0',
                        help='HOST:PORT (port 0 = any) or unix:PATH')
    args = parser.parse_args()

    server = ConnectPlugin.RpcServer.new()
    kv = PyKV()
    kv.export(server)
    print(server.listen(args.listen), flush=True)

    loop = GLib.MainLoop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    loop.run()

    kv.unexport()
    server.close()


if __name__ == '__main__':
    main()
