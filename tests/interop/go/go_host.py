#!/usr/bin/python3
# go_host.py CP_GO_KV_PLUGIN: our host through GIR (PyGObject) against the
# Go KV plugin served like connect-plugin-go's Serve. One line per check;
# exit status 1 if any failed.
import os, re, signal, subprocess, sys, time
import gi
gi.require_version('ConnectPlugin', '1.0')
gi.require_version('Kv', '1.0')
from gi.repository import ConnectPlugin, GLib, Kv

GUARD_S = 10
failures = 0


def check(name, cond, detail=''):
    global failures
    if cond:
        print('ok   ' + name)
    else:
        failures += 1
        print('FAIL %s: %s' % (name, detail))


def wait_for(pred, what):
    ctx = GLib.MainContext.default()
    deadline = time.monotonic() + GUARD_S
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError('still waiting for %s after %d s' % (what, GUARD_S))
        ctx.iteration(False) or time.sleep(0.001)


plugin = subprocess.Popen([sys.argv[1], '--listen', '127.0.0.1:0'], stdout=subprocess.PIPE)
try:
    url = plugin.stdout.readline().decode().strip()
    check('Go plugin prints its URL (%s)' % url, url.startswith('http://127.0.0.1:'), url)

    client = ConnectPlugin.Client.new(url)
    client.set_plugins(['kv'])
    client.props.self_id = 'Py-Interop-Host'
    client.connect_sync(None)
    check('CpClient handshake with the Go plugin: READY',
          client.get_state() == ConnectPlugin.ClientState.READY, client.get_state())
    resp = client.get_handshake_response()
    check('runtime id issued for the self id (%s)' % resp.props.runtime_id,
          re.match(r'^py-interop-host-[0-9a-f]{4}$', resp.props.runtime_id or '') is not None
          and len(resp.props.runtime_token) == 44, resp.props.runtime_id)
    info = client.get_plugin_info('kv')
    check('plugin list: kv 1.0.0 at kv.v1.KVService',
          info is not None and info.props.version == '1.0.0'
          and info.props.service_path == 'kv.v1.KVService', info)
    monitor = client.get_health_monitor()
    check('CpHealthMonitor: HEALTHY, SERVING',
          monitor.get_health_state() == ConnectPlugin.HealthState.HEALTHY
          and monitor.get_serving_status() == ConnectPlugin.ServingStatus.SERVING,
          (monitor.get_health_state(), monitor.get_serving_status()))

    kv = client.dispense('kv', Kv.KVServiceProxy.__gtype__)
    for name, value in [('empty', b''), ('1 byte', b'\x00'), ('1 MiB', bytes(i * 7 % 256 for i in range(1 << 20))),
                        ('non-UTF-8', b'\xff\xfe\x00\xc3\x28\x80')]:
        key = 'bin/' + name
        kv.call_put_sync(Kv.PutRequest(key=key, value=GLib.Bytes(value)), None, None)
        got = kv.call_get_sync(Kv.GetRequest(key=key), None, None)
        same = got.props.found and bytes(got.props.value.get_data() or b'') == value
        deleted = kv.call_delete_sync(Kv.DeleteRequest(key=key), None, None).props.found
        gone = not kv.call_get_sync(Kv.GetRequest(key=key), None, None).props.found
        check('Put/Get/Delete %s value (%d bytes)' % (name, len(value)), same and deleted and gone)
    try:
        kv.call_put_sync(Kv.PutRequest(key='', value=GLib.Bytes(b'x')), None, None)
        check('empty key refused', False, 'Put succeeded')
    except GLib.Error as e:
        check('empty key → invalid_argument (%s)' % e.message,
              e.matches(ConnectPlugin.error_quark(), ConnectPlugin.Error.INVALID_ARGUMENT), e)

    watch = {'started': False, 'events': [], 'closed': False, 'error': None}

    def on_message(stream, ev):
        if ev.props.type == Kv.EventType.UNSPECIFIED and ev.props.key == '_watch_started':
            watch['started'] = True
        else:
            watch['events'].append((ev.props.type, ev.props.key, bytes(ev.props.value.get_data() or b'')))

    def on_closed(stream, error):
        watch['closed'] = True
        watch['error'] = error

    stream = kv.call_watch(Kv.WatchRequest(prefix='w/'), None)
    stream.connect('message', on_message)
    stream.connect('closed', on_closed)
    stream.start()
    wait_for(lambda: watch['started'] or watch['closed'], 'the watch to start')
    kv.call_put_sync(Kv.PutRequest(key='w/a', value=GLib.Bytes(b'\xff\x00')), None, None)
    kv.call_put_sync(Kv.PutRequest(key='x/b', value=GLib.Bytes(b'2')), None, None)
    kv.call_delete_sync(Kv.DeleteRequest(key='w/a'), None, None)
    wait_for(lambda: len(watch['events']) >= 2 or watch['closed'], 'two watch events')
    check('Watch through signals: PUT w/a, DELETE w/a',
          watch['events'] == [(Kv.EventType.PUT, 'w/a', b'\xff\x00'), (Kv.EventType.DELETE, 'w/a', b'')],
          watch['events'])

    state = {'failed': False}

    def on_state(obj, pspec):
        if obj.get_state() == ConnectPlugin.ClientState.FAILED:
            state['failed'] = True

    client.connect('notify::state', on_state)
    killed = time.monotonic()
    plugin.send_signal(signal.SIGKILL)
    wait_for(lambda: state['failed'], 'the client to fail')
    elapsed = (time.monotonic() - killed) * 1000
    err = client.get_error()
    check('Go plugin killed: client FAILED after %.0f ms (%s)' % (elapsed, err.message),
          err.matches(ConnectPlugin.error_quark(), ConnectPlugin.Error.UNAVAILABLE), err)
    wait_for(lambda: watch['closed'], 'the watch to close')
    check('open Watch closed with an error', watch['error'] is not None)
    try:
        kv.call_get_sync(Kv.GetRequest(key='w/a'), None, None)
        check('call after the kill fails', False, 'succeeded')
    except GLib.Error as e:
        check('call after the kill: unavailable (%s)' % e.message,
              e.matches(ConnectPlugin.error_quark(), ConnectPlugin.Error.UNAVAILABLE), e)
finally:
    if plugin.poll() is None:
        plugin.kill()
    plugin.wait()

print('%d failed' % failures)
sys.exit(1 if failures else 0)
