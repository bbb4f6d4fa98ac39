#!/usr/bin/gjs
// watch.js URL [PREFIX [COUNT]]: follows the KV service's Watch from GJS
// through the generated Proxy, printing each event as the stream's `message`
// signal fires; exits after COUNT events (default 3), or when the stream ends.
// Prints "watching PREFIX" once the server has accepted the watch.
// SPDX-License-Identifier: LGPL-2.1-or-later
imports.gi.versions.ConnectPlugin = '1.0';
imports.gi.versions.Kv = '1.0';
const {ConnectPlugin, GLib, Kv} = imports.gi;

const [url, prefix = '', count = '3'] = ARGV;
if (!url) {
    printerr('usage: watch.js URL [PREFIX [COUNT]]');
    imports.system.exit(2);
}

const loop = new GLib.MainLoop(null, false);
const decoder = new TextDecoder();
const kv = Kv.KVServiceProxy.new(ConnectPlugin.Channel.new(url));
const stream = kv.call_watch(new Kv.WatchRequest({prefix}), null);
let seen = 0, status = 0;

stream.connect('headers', () => print(`watching ${prefix}`));
stream.connect('message', (_stream, event) => {
    const kind = event.type === Kv.EventType.PUT ? 'PUT' : 'DELETE';
    const value = decoder.decode(event.value.get_data() ?? new Uint8Array());
    print(`${kind} ${event.key}${value ? ` = ${value}` : ''}`);
    if (++seen === Number(count))
        loop.quit();
});
stream.connect('closed', (_stream, error) => {
    if (error) {
        printerr(`watch.js: ${error.message}`);
        status = 1;
    }
    loop.quit();
});
loop.run();
stream.cancel();
imports.system.exit(status);
