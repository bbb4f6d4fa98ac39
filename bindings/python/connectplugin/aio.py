# SPDX-License-Identifier: LGPL-2.1-or-later
# aio.py: asyncio over GLib's main context, so ConnectPlugin's async calls can be awaited.
"""asyncio for ConnectPlugin on PyGObject without asyncio support (3.42).

ConnectPlugin completes its async calls from GLib's default main context;
asyncio needs a loop that iterates it. :class:`GLibEventLoop` is asyncio's
own ``SelectorEventLoop`` over :class:`GLibSelector`, a selector whose
``select()`` is one ``GLib.MainContext.iteration()``: asyncio's file
descriptors are GLib unix fd sources, its timeout a GLib timeout source.
So a single thread sleeps in one poll() for both worlds: no polling, no
sleeps, no extra thread; the cost is a Python call per loop iteration.

    import asyncio
    from connectplugin import aio

    async def main():
        ok = await client.connect_async()            # no callback: a future
        reply = await proxy.call_get(Kv.GetRequest(key="k"))
        async for event in proxy.call_watch(Kv.WatchRequest(), None):
            ...

    aio.run(main())          # or asyncio.set_event_loop_policy(aio.GLibEventLoopPolicy())
"""
import asyncio
import math
import selectors

import gi

gi.require_version('GLib', '2.0')
from gi.repository import GLib  # noqa: E402

__all__ = ['GLibSelector', 'GLibEventLoop', 'GLibEventLoopPolicy', 'run', 'call', 'stream']

_READ_CONDITIONS = GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR
_WRITE_CONDITIONS = GLib.IOCondition.OUT | GLib.IOCondition.ERR


class GLibSelector(selectors._BaseSelectorImpl):
    """A selector whose select() iterates GLib's default main context once."""

    def __init__(self):
        super().__init__()
        self._context = GLib.MainContext.default()
        self._sources = {}
        self._ready = {}

    def register(self, fileobj, events, data=None):
        key = super().register(fileobj, events, data)
        conditions = GLib.IOCondition(0)
        if events & selectors.EVENT_READ:
            conditions |= _READ_CONDITIONS
        if events & selectors.EVENT_WRITE:
            conditions |= _WRITE_CONDITIONS
        self._sources[key.fd] = GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, key.fd,
                                                      conditions, self._on_fd)
        return key

    def unregister(self, fileobj):
        key = super().unregister(fileobj)
        source = self._sources.pop(key.fd, None)
        if source is not None:
            GLib.source_remove(source)
        self._ready.pop(key.fd, None)
        return key

    def _on_fd(self, fd, conditions, *unused):
        events = 0
        if conditions & _READ_CONDITIONS:
            events |= selectors.EVENT_READ
        if conditions & _WRITE_CONDITIONS:
            events |= selectors.EVENT_WRITE
        self._ready[fd] = self._ready.get(fd, 0) | events
        return GLib.SOURCE_CONTINUE

    def _on_timeout(self, *unused):
        self._timer = None
        return GLib.SOURCE_REMOVE

    def select(self, timeout=None):
        self._ready = {}
        self._timer = None
        may_block = timeout is None or timeout > 0
        if timeout is not None and timeout > 0:
            # Rounded up: waking early only makes asyncio select again.
            self._timer = GLib.timeout_add(max(1, math.ceil(timeout * 1000)), self._on_timeout)
        try:
            self._context.iteration(may_block)
        finally:
            if self._timer is not None:
                GLib.source_remove(self._timer)
                self._timer = None
        ready = []
        for fd, events in self._ready.items():
            key = self._fd_to_key.get(fd)
            if key is not None and events & key.events:
                ready.append((key, events & key.events))
        return ready

    def close(self):
        for source in self._sources.values():
            GLib.source_remove(source)
        self._sources.clear()
        super().close()


class GLibEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector event loop, sleeping in GLib's main context."""

    # What ConnectPlugin's overrides check before returning a future.
    _cp_iterates_glib = True

    def __init__(self):
        super().__init__(GLibSelector())


class GLibEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """asyncio.set_event_loop_policy(GLibEventLoopPolicy()) makes
    asyncio.run() and new_event_loop() use GLibEventLoop."""

    _loop_factory = GLibEventLoop


def run(main, *, debug=None):
    """asyncio.run(main) on a GLibEventLoop."""
    if hasattr(asyncio, 'Runner'):
        with asyncio.Runner(debug=debug, loop_factory=GLibEventLoop) as runner:
            return runner.run(main)
    loop = GLibEventLoop()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def call(method, *args, **kwargs):
    """await call(proxy.call_get, request): the same as awaiting the method
    called without a callback, spelt as a helper."""
    return await method(*args, **kwargs)


def stream(response_stream):
    """The messages of a ResponseStream as an asynchronous iterator
    (ConnectPlugin.ResponseStreamIterator: headers(), cancel())."""
    return response_stream.__aiter__()
