// SPDX-License-Identifier: LGPL-2.1-or-later
// greeter-watcher.js: the tutorial's GJS client, with promises
//
//   gjs -m greeter-watcher.js PLUGIN-EXECUTABLE
//
// Launches the greeter plugin, awaits a Greet (Gio._promisify on the
// generated proxy), watches the greetings of GreetMany through signals,
// follows the client's state by name, and exits 0 when all came as expected.
import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Gio from 'gi://Gio';
import ConnectPlugin from 'gi://ConnectPlugin?version=1.0';
import Greeter from 'gi://Greeter?version=1.0';
import System from 'system';

Gio._promisify(ConnectPlugin.Client.prototype, 'connect_async', 'connect_finish');
Gio._promisify(ConnectPlugin.Client.prototype, 'close_async', 'close_finish');
Gio._promisify(Greeter.GreeterServiceProxy.prototype, 'call_greet', 'call_greet_finish');

async function main(plugin) {
    const got = [];
    const discovery = new ConnectPlugin.ProcessDiscovery({argv: [plugin], name: 'greeter'});
    const client = ConnectPlugin.Client.new_for_discovery(discovery);
    client.connect('notify::state', () => {
        print(`state: ${GObject.enum_to_string(ConnectPlugin.ClientState.$gtype, client.get_state())}`);
    });
    await client.connect_async(null);
    const greeter = client.dispense('greeter', Greeter.GreeterServiceProxy.$gtype);

    const reply = await greeter.call_greet(new Greeter.GreetRequest({name: 'World'}), null, null);
    got.push(reply.text);

    const stream = greeter.call_greet_many(new Greeter.GreetRequest({name: 'GJS'}), null);
    await new Promise((resolve, reject) => {
        stream.connect('message', (_stream, greeting) => got.push(greeting.text));
        stream.connect('closed', (_stream, error) => (error ? reject(error) : resolve()));
        stream.start();
    });
    await client.close_async(null);

    got.forEach(line => print(line));
    return JSON.stringify(got) === JSON.stringify(
        ['Hello, World!', 'Hello, GJS!', 'Bonjour, GJS!', 'Hallo, GJS!']);
}

const loop = new GLib.MainLoop(null, false);
let status = 1;
main(ARGV[0]).then(ok => {
    status = ok ? 0 : 1;
}).catch(e => {
    printerr(e);
}).finally(() => loop.quit());
loop.run();
System.exit(status);
