#!/usr/bin/python3
# platform_host.py PLUGIN_DIR: platform-host.c in Python, through GObject
# introspection: a CpServer with a CpBroker offering the "secrets"
# capability (a Demo.SecretsSkeleton subclassed in Python), the four example
# plugins launched with HOST_URL, then app.Process calls whose route goes
# app -> cache -> logger through the host's router.
#
#   GI_TYPELIB_PATH=BUILD/connectplugin:BUILD/examples/platform/libdemo \
#   LD_LIBRARY_PATH=... /usr/bin/python3 platform_host.py BUILD/examples/platform
import os
import sys

import gi
gi.require_version('ConnectPlugin', '1.0')
gi.require_version('Demo', '1.0')
from gi.repository import ConnectPlugin, Demo, GLib

GUARD_SECONDS = 20
PLUGINS = ['secrets-reader', 'logger-plugin', 'cache-plugin', 'app-plugin']
VAULT = {'db-password': 'hunter2'}


class Secrets(Demo.SecretsSkeleton):
    """The host's secrets capability: answered in-process by the broker."""

    def do_handle_get_secret(self, invocation, request):
        value = VAULT.get(request.props.name)
        if value is None:
            invocation.return_error_literal(ConnectPlugin.Error.NOT_FOUND, 'no such secret')
        else:
            self.complete_get_secret(invocation, Demo.GetSecretResponse(value=value))
        return True


def wait(ctx, done):
    """Iterate the main context until done() or the guard expires."""
    expired = []
    guard = GLib.timeout_add_seconds(GUARD_SECONDS, lambda: expired.append(1))
    while not done() and not expired:
        ctx.iteration(True)
    if not expired:
        GLib.source_remove(guard)
    return not expired


def launch(ctx, plugin_dir, name, host_url):
    env = GLib.environ_setenv(GLib.get_environ(), 'HOST_URL', host_url, True)
    discovery = ConnectPlugin.ProcessDiscovery(argv=[os.path.join(plugin_dir, name)],
                                               name=name, environment=env)
    client = ConnectPlugin.Client.new_for_discovery(discovery)
    client.set_plugins([name[:-len('-plugin')]] if name.endswith('-plugin') else [])
    results = []
    client.connect_async(None, lambda c, r: results.append(r))
    if not wait(ctx, lambda: results):
        raise SystemExit(f'{name}: start-up timed out')
    client.connect_finish(results[0])
    print(f'host: launched {name} at {client.get_url()}', flush=True)
    return client


def main():
    plugin_dir = sys.argv[1]
    ctx = GLib.MainContext.default()
    server = ConnectPlugin.Server.new()
    broker = ConnectPlugin.Broker.new(server)
    broker.connect('plugin-health-changed', lambda b, p: print(
        f'host: plugin {p.props.runtime_id} is {p.props.health_state.value_nick}', flush=True))
    secrets = Secrets()
    broker.add_capability('secrets', '1.0.0', secrets)
    server.start()
    url = server.listen('127.0.0.1:0')
    print(f'host: serving the platform at {url}', flush=True)

    clients = [launch(ctx, plugin_dir, name, url) for name in PLUGINS]
    plugins = broker.get_plugins()

    def all_healthy():
        states = [plugins.get_item(i).props.health_state for i in range(plugins.get_n_items())]
        return states.count(ConnectPlugin.HealthState.HEALTHY) >= len(PLUGINS)

    if not wait(ctx, all_healthy):
        raise SystemExit('not every plugin reported healthy')

    app = clients[-1].dispense('app', Demo.AppProxy)
    for i in range(3):
        results = []
        app.call_process(Demo.ProcessRequest(input=f'order-{i + 1}'), None, None,
                         lambda a, r: results.append(r))
        wait(ctx, lambda: results)
        reply = app.call_process_finish(results[0])
        print(f'call {i + 1}: {reply.props.result}', flush=True)
        for hop in reply.props.route:
            print(f'  route: {hop}', flush=True)
        assert len(reply.props.route) == 2, reply.props.route

    for client in clients:
        results = []
        client.close_async(None, lambda c, r: results.append(r))
        wait(ctx, lambda: results)
    print('host: done, every call went through', flush=True)


if __name__ == '__main__':
    main()
