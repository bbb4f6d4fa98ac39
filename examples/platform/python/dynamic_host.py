#!/usr/bin/python3
# dynamic_host.py PLUGIN_DIR [CALLS]: dynamic-host.c in Python, through
# GObject introspection: a CpServer with a CpBroker that adds logger-plugin
# and cache-plugin itself, then, while a client keeps 8 cache.Get calls in
# flight through the host's router, replaces the cache with a new instance,
# adds a second cache and removes it. Prints each step, the plugins the
# host lists (its GListModel) and the calls of each phase, and ends with
# "dynamic: N calls, M failed"; exits 1 if a call failed.
#
#   GI_TYPELIB_PATH=BUILD/connectplugin:BUILD/examples/platform/libdemo \
#   LD_LIBRARY_PATH=... /usr/bin/python3 dynamic_host.py BUILD/examples/platform
import os
import sys
import time

import gi
gi.require_version('ConnectPlugin', '1.0')
gi.require_version('Demo', '1.0')
from gi.repository import ConnectPlugin, Demo, GLib

GUARD_SECONDS = 20
WORKERS = 8
REDISCOVER_EVERY = 10
MAX_ATTEMPTS = 3
PHASES = ['one cache', 'replace', 'a second cache', 'remove the second cache']
REFUSED = (ConnectPlugin.Error.UNAVAILABLE, ConnectPlugin.Error.UNIMPLEMENTED)

ctx = GLib.MainContext.default()


def wait(done, what):
    """Iterate the main context until done() or the guard expires."""
    expired = []
    guard = GLib.timeout_add_seconds(GUARD_SECONDS, lambda: expired.append(1))
    while not done() and not expired:
        ctx.iteration(True)
    if expired:
        raise SystemExit(f'dynamic_host.py: {what}: not done after {GUARD_SECONDS} s')
    GLib.source_remove(guard)


def finish(start, what):
    """Start an async call with a callback that keeps its result; wait for it."""
    results = []
    start(lambda source, result: results.append(result))
    wait(lambda: results, what)
    return results[0]


def ms_since(start):
    return (time.monotonic() - start) * 1000


def print_plugins(broker):
    model = broker.get_plugins()
    items = [model.get_item(i) for i in range(model.get_n_items())]
    listed = ', '.join(
        f'{p.props.runtime_id} [{p.props.health_state.value_nick}'
        f'{", added by the host" if p.props.managed else ""}'
        f'{"" if p.props.routable else ", not routable"}]' for p in items)
    print(f'  plugins ({len(items)}):' + (f' {listed}' if listed else ''), flush=True)


def launch(plugin_dir, name, processes):
    """Launch PLUGIN_DIR/NAME without HOST_URL: it serves and waits to be added."""
    env = GLib.environ_unsetenv(GLib.get_environ(), 'HOST_URL')
    process = ConnectPlugin.ProcessDiscovery(argv=[os.path.join(plugin_dir, name)],
                                             name=name, environment=env)
    url = process.start_finish(finish(lambda cb: process.start_async(None, cb), name))
    process.connect('exited', lambda p, status, term_signal: print(
        f'  process {p.get_name()} killed by signal {term_signal}' if term_signal else
        f'  process {p.get_name()} exited (status {status})', flush=True))
    processes.append(process)
    print(f'host: launched {name} (pid {process.get_pid()}) at {url}', flush=True)
    return url, process.props.control_secret


def add(broker, plugin_dir, name, processes):
    url, secret = launch(plugin_dir, name, processes)
    start = time.monotonic()
    plugin = broker.add_plugin_finish(
        finish(lambda cb: broker.add_plugin_async(url, secret, None, cb), 'add'))
    print(f'add {name}: {plugin.props.runtime_id} routable after {ms_since(start):.1f} ms', flush=True)
    return plugin


def on_plugin_removing(broker, plugin, impact):
    """The removal's impact, from the broker's dependency graph."""
    stops = ', '.join(impact.get_affected_plugins()) if impact else ''
    lost = ', '.join(impact.get_unavailable_services()) if impact else ''
    print(f'  signal plugin-removing: {plugin.props.runtime_id} (stops: {stops or "none"}; '
          f'services left without a provider: {lost or "none"})', flush=True)


def remove(broker, plugin):
    broker.remove_plugin_finish(
        finish(lambda cb: broker.remove_plugin_async(plugin, None, cb), 'remove'))


class Load:
    """The client: workers that each keep one cache.Get in flight."""

    def __init__(self, client):
        self.client = client
        self.phase = 0
        self.stop = False
        self.busy = 0
        self.calls = self.failed = self.rerouted = 0
        self.phase_calls = [0] * len(PHASES)
        self.phase_failed = [0] * len(PHASES)
        self.phase_rerouted = [0] * len(PHASES)
        self.served = [{} for _ in PHASES]
        self.replaced_id = None
        self.forwarded = 0

    def start(self):
        self.busy = WORKERS
        for _ in range(WORKERS):
            Worker(self).next()

    def count(self, failed=False):
        self.calls += 1
        self.phase_calls[self.phase] += 1
        if failed:
            self.failed += 1
            self.phase_failed[self.phase] += 1

    def print_phase(self, phase):
        served = ', '.join(f'{k} {v}' for k, v in sorted(self.served[phase].items()))
        print(f'phase {phase + 1} ({PHASES[phase]}): {self.phase_calls[phase]} calls, '
              f'{self.phase_failed[phase]} failed, {self.phase_rerouted[phase]} rerouted; '
              f'served by {served}', flush=True)


class Worker:
    def __init__(self, load):
        self.load = load
        self.cache = None       # routed to one provider; None: discover
        self.provider = None    # the runtime id its calls address
        self.since_discovery = 0
        self.attempt = 0

    def next(self):
        load = self.load
        if load.stop and self.attempt == 0:
            load.busy -= 1
            return
        if self.cache is not None and self.since_discovery >= REDISCOVER_EVERY:
            self.cache = None
        if self.cache is None:
            load.client.discover_service_async('cache', '1.0.0', None, self.on_discovered)
        else:
            self.send()

    def on_discovered(self, client, result):
        try:
            channel = client.discover_service_finish(result)
        except GLib.Error as e:
            if self.load.failed < 5:
                print(f'dynamic_host.py: no cache provider: {e.message}', file=sys.stderr)
            self.load.count(failed=True)
            self.attempt = 0
            self.next()
            return
        # The base URL ends with /services/cache/<provider runtime id>.
        self.provider = channel.props.base_url.rsplit('/', 1)[-1]
        self.cache = Demo.CacheProxy.new(channel)
        self.since_discovery = 0
        self.send()

    def send(self):
        options = ConnectPlugin.CallOptions.new()
        options.set_timeout_ms(10000)
        self.cache.call_get(Demo.GetRequest(key='greeting'), options, None,
                            lambda cache, result: self.on_reply(cache, result, options))

    def on_reply(self, cache, result, options):
        load = self.load
        phase = load.phase
        try:
            cache.call_get_finish(result)
        except GLib.Error as e:
            if e.code in REFUSED and self.attempt + 1 < MAX_ATTEMPTS:
                # Refused by the router (the provider is leaving, or has
                # left): the call reached no plugin; ask the registry again.
                self.attempt += 1
                load.rerouted += 1
                load.phase_rerouted[phase] += 1
            else:
                if load.failed < 5:
                    print(f'dynamic_host.py: a call to {self.provider} failed: {e.message}',
                          file=sys.stderr)
                load.count(failed=True)
                self.attempt = 0
            self.cache = None
            self.next()
            return
        # The cache names itself in its answer: "<cache id> -> <logger id>".
        route = options.get_response_headers().get_one('X-Plugin-Route')
        served_by = route.split(' ')[0] if route else '?'
        load.count()
        load.served[phase][served_by] = load.served[phase].get(served_by, 0) + 1
        if load.replaced_id is not None and self.provider == load.replaced_id != served_by:
            load.forwarded += 1
        self.attempt = 0
        self.since_discovery += 1
        self.next()


def hide_plugin_output(level, fields, n_fields, *data):
    """The plugins' own output (the field CP_PLUGIN) is hidden: the logger
    writes a line for every call."""
    if any(f.key == 'CP_PLUGIN' for f in fields):
        return GLib.LogWriterOutput.HANDLED
    return GLib.log_writer_default(level, fields, None)


def run(broker, url, plugin_dir, n_calls, processes):
    # 1. The logger, then the cache that requires it.
    add(broker, plugin_dir, 'logger-plugin', processes)
    print_plugins(broker)
    cache = add(broker, plugin_dir, 'cache-plugin', processes)
    print_plugins(broker)

    # 2. The client: a CpServer without services that handshakes with the
    # host for a runtime identity, as a plugin does.
    client = ConnectPlugin.Server(self_id='dynamic-client', self_version='1.0.0', host_url=url)
    client.start()
    client.listen('127.0.0.1:0')
    wait(client.get_host_registered, "the client's handshake")
    load = Load(client)
    print(f'client: {client.get_runtime_id()} keeps {WORKERS} cache.Get calls in flight '
          "through the host's router", flush=True)
    print_plugins(broker)
    load.start()
    wait(lambda: load.phase_calls[0] >= n_calls, 'phase 1')
    load.print_phase(0)

    try:
        # 3. Replace the cache under load.
        new_url, secret = launch(plugin_dir, 'cache-plugin', processes)
        gone = []
        handler = broker.connect('plugin-removed', lambda b, p: p == cache and gone.append(1))
        load.phase = 1
        load.replaced_id = cache.props.runtime_id
        start = time.monotonic()
        replacement = broker.replace_plugin_finish(finish(
            lambda cb: broker.replace_plugin_async(cache, new_url, secret, None, cb), 'replace'))
        print(f'replace {cache.props.runtime_id}: the new instance {replacement.props.runtime_id} '
              f'serves every new call after {ms_since(start):.1f} ms (calls answered meanwhile: '
              f'{load.phase_calls[1]}; still in flight on the old one: {cache.get_n_inflight()})',
              flush=True)
        wait(lambda: load.phase_calls[1] >= n_calls and gone, 'phase 2')
        broker.disconnect(handler)
        print_plugins(broker)
        load.print_phase(1)
        print(f'  {load.forwarded} calls addressed to {load.replaced_id} were served by its '
              'replacement', flush=True)

        # 4. A second cache: the workers' next discoveries spread over both,
        # until the second serves a quarter of the calls at least.
        load.phase = 2
        second = add(broker, plugin_dir, 'cache-plugin', processes)
        print(f'  (calls answered while it was added: {load.phase_calls[2]})', flush=True)
        print_plugins(broker)
        second_id = second.props.runtime_id
        wait(lambda: load.phase_calls[2] >= n_calls and
             load.served[2].get(second_id, 0) >= max(n_calls // 4, 1), 'phase 3')
        load.print_phase(2)

        # 5. Remove the second cache while calls go to it.
        load.phase = 3
        in_flight = second.get_n_inflight()
        start = time.monotonic()
        remove(broker, second)
        print(f'remove {second_id}: out of the platform after {ms_since(start):.1f} ms (calls in '
              f'flight to it at the start, which finished: {in_flight}; calls answered meanwhile: '
              f'{load.phase_calls[3]})', flush=True)
        print_plugins(broker)
        goal = load.phase_calls[3] + n_calls
        wait(lambda: load.phase_calls[3] >= goal, 'phase 4')
        load.print_phase(3)
    finally:
        # The client stops and unregisters.
        load.stop = True
        wait(lambda: load.busy == 0, "the client's last calls")
        client.shutdown_finish(finish(lambda cb: client.shutdown_async(None, cb), 'shutdown'))
        client.close()
    return load


def main():
    plugin_dir = sys.argv[1]
    n_calls = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    GLib.log_set_writer_func(hide_plugin_output)
    server = ConnectPlugin.Server.new()
    broker = ConnectPlugin.Broker.new(server)
    broker.set_selection_strategy('cache', ConnectPlugin.SelectionStrategy.ROUND_ROBIN)
    broker.connect('plugin-added', lambda b, p: print(
        f'  signal plugin-added: {p.props.runtime_id}', flush=True))
    broker.connect('plugin-removing', on_plugin_removing)
    broker.connect('plugin-removed', lambda b, p: print(
        f'  signal plugin-removed: {p.props.runtime_id}', flush=True))
    server.start()
    url = server.listen('127.0.0.1:0')
    print(f"host: serving the platform at {url} (the plugins' own output is hidden)", flush=True)

    processes = []
    try:
        load = run(broker, url, plugin_dir, n_calls, processes)
    finally:
        # The host removes what is left (the plugins it added are asked to
        # shut down; the client, which registered itself and has no way to
        # leave, is only dropped) and waits for the processes.
        model = broker.get_plugins()
        for plugin in reversed([model.get_item(i) for i in range(model.get_n_items())]):
            remove(broker, plugin)
        # The removals asked each plugin to shut down: wait for them to exit.
        wait(lambda: all(p.get_state() == ConnectPlugin.ProcessState.EXITED for p in processes),
             "the plugins' exit")
        print_plugins(broker)
        server.close()

    print(f'dynamic: {load.calls} calls, {load.failed} failed '
          f'({load.rerouted} rerouted after the router refused them)', flush=True)
    return 0 if load.failed == 0 and load.calls > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
