// SPDX-License-Identifier: LGPL-2.1-or-later
// test_gjs_promise.js: ConnectPlugin's async calls awaited from GJS through Gio._promisify.
//
// A GJS host against examples/kv/kv-plugin (KV_PLUGIN): promisifyAsync()
// (the README's recipe) turns every _async/_finish pair of a class into a
// method returning a Promise when the callback is left out; then connect,
// Put, Get, a Connect error with its code, a Watch event whose EventType is
// printed by name, close. Prints "ok" and exits 0 on success.
import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Gio from 'gi://Gio';
import ConnectPlugin from 'gi://ConnectPlugin?version=1.0';
import Kv from 'gi://Kv?version=1.0';
import System from 'system';

// --- the README's recipe ---
// Promises for every method NAME with a NAME_finish (call_get/call_get_finish)
// or NAME_async with NAME_finish (connect_async/connect_finish).
function promisifyAsync(klass) {
    const proto = klass.prototype;
    for (const name of Object.getOwnPropertyNames(proto)) {
        if (name.startsWith('_') || name.endsWith('_finish'))
            continue;
        const finish = `${name.replace(/_async$/, '')}_finish`;
        if (typeof proto[finish] === 'function')
            Gio._promisify(proto, name, finish);
    }
}
promisifyAsync(ConnectPlugin.Client);
promisifyAsync(ConnectPlugin.Channel);
promisifyAsync(Kv.KVServiceProxy);
// --- end of the recipe ---

function check(condition, what) {
    if (!condition)
        throw new Error(`check failed: ${what}`);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function main(plugin) {
    const discovery = new ConnectPlugin.ProcessDiscovery({argv: [plugin], name: 'kv'});
    const client = ConnectPlugin.Client.new_for_discovery(discovery);
    client.set_plugins(['kv']);
    check(await client.connect_async(null) === true, 'connect');
    check(client.get_state() === ConnectPlugin.ClientState.READY, 'ready');
    const ready = GObject.enum_to_string(ConnectPlugin.ClientState.$gtype, client.get_state());
    check(ready === 'CP_CLIENT_STATE_READY', `the state's name, got ${ready}`);
    print(`state ${ready}`);

    const kv = client.dispense('kv', Kv.KVServiceProxy.$gtype);
    const watch = kv.call_watch(new Kv.WatchRequest({prefix: 'greeting'}), null);
    const headers = new Promise(resolve => watch.connect('headers', () => resolve()));
    const firstEvent = new Promise(resolve => watch.connect('message', (_s, e) => resolve(e)));
    watch.start();
    await headers;

    const put = await kv.call_put(new Kv.PutRequest({key: 'greeting',
        value: new GLib.Bytes(encoder.encode('hello'))}), null, null);
    check(put instanceof Kv.PutResponse, 'PutResponse');
    const reply = await kv.call_get(new Kv.GetRequest({key: 'greeting'}), null, null);
    check(reply.found, 'found');
    check(decoder.decode(reply.value.get_data()) === 'hello', 'value');
    print(`get ${reply.found} ${decoder.decode(reply.value.get_data())}`);

    // The generic unary call, promisified on CpChannel.
    const generic = await client.get_channel().call_async('/kv.v1.KVService/Get',
        new Kv.GetRequest({key: 'greeting'}), Kv.GetResponse.$gtype, null, null);
    check(generic.found, 'Channel.call_async');

    try {
        await kv.call_put(new Kv.PutRequest({key: ''}), null, null);
        check(false, 'an empty key is refused');
    } catch (e) {
        check(e instanceof GLib.Error, 'a GLib.Error');
        check(e.matches(ConnectPlugin.error_quark(), ConnectPlugin.Error.INVALID_ARGUMENT),
            `invalid_argument, got ${e}`);
        const code = ConnectPlugin.Error.code_to_string(e.code);
        check(code === 'invalid_argument', `the code's name, got ${code}`);
        print(`error ${code}`);
    }

    const event = await firstEvent;
    check(event.type === Kv.EventType.PUT, 'a PUT event');
    const name = GObject.enum_to_string(Kv.EventType.$gtype, event.type);
    check(name === 'KV_EVENT_TYPE_PUT', `the enum's name, got ${name}`);
    print(`event ${name} ${event.key}`);
    watch.cancel();

    check(await client.close_async(null) === true, 'close');
    print(`state ${GObject.enum_to_string(ConnectPlugin.ClientState.$gtype, client.get_state())}`);
}

const plugin = GLib.getenv('KV_PLUGIN');
if (!plugin) {
    printerr('KV_PLUGIN is not set');
    System.exit(1);
}
const loop = new GLib.MainLoop(null, false);
let status = 0;
main(plugin).then(() => print('ok')).catch(e => {
    printerr(`test_gjs_promise.js: ${e}\n${e.stack ?? ''}`);
    status = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(status);
