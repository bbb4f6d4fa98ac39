// A connect-node KV server (kv.v1.KVService over HTTP/1.1), used as a real peer
// by our client's interop test. Prints its base URL as the first stdout line.
//   node kv-server.mjs DESCRIPTOR_SET
import http from "node:http";
import { EventEmitter } from "node:events";
import { ConnectError, Code } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { loadKV } from "./kv-schema.mjs";

const { service, m } = loadKV(process.argv[2]);
const store = new Map();
const changes = new EventEmitter();
changes.setMaxListeners(0);

const impl = {
  [m.Get](req) {
    const v = store.get(req.key);
    return { value: v ?? new Uint8Array(), found: v !== undefined };
  },
  [m.Put](req, ctx) {
    if (req.key === "") throw new ConnectError("key must not be empty", Code.InvalidArgument);
    if (req.key === "slow") return new Promise((r) => setTimeout(() => r({}), 2000));
    store.set(req.key, req.value);
    changes.emit("event", { type: 1, key: req.key, value: req.value });
    ctx.responseHeader.set("x-kv-size", String(store.size));
    ctx.responseTrailer.set("x-kv-trailer", "done");
    return {};
  },
  [m.Delete](req) {
    const found = store.delete(req.key);
    if (found) changes.emit("event", { type: 2, key: req.key, value: new Uint8Array() });
    return { found };
  },
  async *[m.Watch](req, ctx) {
    const queue = [];
    let wake = null;
    const onEvent = (e) => {
      if (e.key.startsWith(req.prefix)) { queue.push(e); wake?.(); }
    };
    changes.on("event", onEvent);
    ctx.signal.addEventListener("abort", () => wake?.());
    try {
      for (;;) {
        while (queue.length) yield queue.shift();
        if (ctx.signal.aborted) return;
        await new Promise((r) => (wake = r));
        wake = null;
      }
    } finally {
      changes.off("event", onEvent);
    }
  },
};

const server = http.createServer(
  connectNodeAdapter({ routes: (router) => router.service(service, impl) }),
);
server.listen(0, "127.0.0.1", () => {
  console.log(`http://127.0.0.1:${server.address().port}`);
});
process.on("SIGTERM", () => { server.closeAllConnections?.(); server.close(); process.exit(0); });
