/* kv-server.vala: the KV service (kv.v1.KVService) in Vala, on the generated Skeleton
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   kv-server-vala [--listen 127.0.0.1:PORT | --listen unix:PATH]
 *
 * Prints the URL it serves as the first line of stdout; SIGINT/SIGTERM stop it.
 * Same behaviour as kv-server.c, in a subclass of Kv.KVServiceSkeleton
 * (kv-1.0.vapi, generated from the Kv-1.0 GIR).
 */

/* One open Watch: events go out one at a time with send_message_async (),
 * which waits while the client is slow; the others wait in pending. Past
 * MAX_PENDING_BYTES the watch ends with resource_exhausted instead of
 * buffering without bound for a client that does not read. */
class Watcher {
    public const size_t MAX_PENDING_BYTES = 4 * 1024 * 1024;

    public string prefix;
    public Queue<Kv.WatchEvent> pending = new Queue<Kv.WatchEvent> ();
    public size_t pending_bytes;
    public bool sending;

    public Watcher (string prefix) {
        this.prefix = prefix;
    }

    public static size_t event_size (Kv.WatchEvent event) {
        Bytes? value = event.value;
        return (size_t) event.key.length + (value != null ? value.get_size () : 0);
    }
}

class KvStore : Kv.KVServiceSkeleton, Kv.KVService {
    HashTable<string, Bytes> store = new HashTable<string, Bytes> (str_hash, str_equal);
    HashTable<Cp.Invocation, Watcher> watchers = new HashTable<Cp.Invocation, Watcher> (null, null);

    public override bool handle_get (Cp.Invocation call, Kv.GetRequest request) {
        Bytes? value = store[request.key];
        complete_get (call, new Kv.GetResponse () { found = value != null, value = value });
        return true;
    }

    public override bool handle_put (Cp.Invocation call, Kv.PutRequest request) {
        if (request.key == "") {
            call.return_gerror (new Cp.Error.INVALID_ARGUMENT ("key must not be empty"));
            return true;
        }
        store[request.key] = request.value;
        publish (Kv.EventType.PUT, request.key, request.value);
        complete_put (call, new Kv.PutResponse ());
        return true;
    }

    public override bool handle_delete (Cp.Invocation call, Kv.DeleteRequest request) {
        bool found = store.remove (request.key);
        if (found)
            publish (Kv.EventType.DELETE, request.key, null);
        complete_delete (call, new Kv.DeleteResponse () { found = found });
        return true;
    }

    public override bool handle_watch (Cp.Invocation call, Kv.WatchRequest request) {
        watchers[call] = new Watcher (request.prefix);
        call.get_cancellable ().cancelled.connect (forget);
        call.send_headers ();  /* the caller knows the watch is in place */
        return true;
    }

    void forget (Cancellable cancelled) {
        watchers.foreach_remove ((call, prefix) => call.get_cancellable () == cancelled);
    }

    void publish (Kv.EventType type, string key, Bytes? value) {
        var slow = new GenericArray<Cp.Invocation> ();
        watchers.foreach ((call, watcher) => {
            if (!key.has_prefix (watcher.prefix))
                return;
            var event = new Kv.WatchEvent () { type = type, key = key, value = value };
            size_t size = Watcher.event_size (event);
            if (watcher.pending_bytes + size > Watcher.MAX_PENDING_BYTES) {
                slow.add (call);
                return;
            }
            watcher.pending.push_tail (event);
            watcher.pending_bytes += size;
            if (!watcher.sending)
                send_pending.begin (call, watcher);
        });
        slow.foreach ((call) => {
            watchers.remove (call);
            call.return_gerror (new Cp.Error.RESOURCE_EXHAUSTED ("the watcher does not keep up with the changes"));
        });
    }

    async void send_pending (Cp.Invocation call, Watcher watcher) {
        watcher.sending = true;
        while (!watcher.pending.is_empty () && watchers[call] == watcher) {
            Kv.WatchEvent event = watcher.pending.pop_head ();
            watcher.pending_bytes -= Watcher.event_size (event);
            try {
                yield call.send_message_async (event, null);
            } catch (Error e) {
                printerr ("watch: dropping events: %s\n", e.message);
                break;
            }
        }
        watcher.sending = false;
    }
}

int main (string[] args) {
    string? listen = null;
    OptionEntry[] entries = {
        { "listen", 'l', OptionFlags.NONE, OptionArg.STRING, ref listen,
          "Address to listen on: HOST:PORT (port 0 = any) or unix:PATH", "ADDRESS" },
        { null }
    };
    var context = new OptionContext ("— serve kv.v1.KVService (Vala)");
    context.add_main_entries (entries, null);

    var server = new Cp.RpcServer ();
    var kv = new KvStore ();
    try {
        context.parse (ref args);
        kv.export (server);
        stdout.printf ("%s\n", server.listen (listen ?? "127.0.0.1:0"));
        stdout.flush ();
    } catch (Error e) {
        printerr ("kv-server-vala: %s\n", e.message);
        return (e is OptionError) ? 2 : 1;
    }

    var loop = new MainLoop ();
    Unix.signal_add (ProcessSignal.INT, () => { loop.quit (); return Source.REMOVE; });
    Unix.signal_add (ProcessSignal.TERM, () => { loop.quit (); return Source.REMOVE; });
    loop.run ();

    kv.unexport ();
    server.close ();
    return 0;
}
