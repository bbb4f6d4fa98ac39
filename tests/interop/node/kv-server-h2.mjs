// A connect-node KV server over HTTP/2, used as a real peer by our HTTP/2
// client's interop test (test-node-h2.c). h2c (prior knowledge) by default,
// TLS with ALPN h2 when given a certificate and key (HTTPS over HTTP/1.1
// only, without h2 in ALPN, when "http1" follows them). Prints its base URL
// as the first stdout line.
//   node kv-server-h2.mjs DESCRIPTOR_SET [CERT.pem KEY.pem [http1]]
// Besides kv.v1.KVService it serves kv.v1.KVStreams, added to the schema
// here only (the KV schema has no client or bidi stream):
//   PutMany (stream PutRequest) → GetResponse  stores each; value = the keys joined by ","
//   Echo    (stream PutRequest) → stream WatchEvent  one event per request, as it arrives
//   Stats   GetRequest → GetResponse               value = how many connections were accepted
import http2 from "node:http2";
import https from "node:https";
import { readFileSync } from "node:fs";
import { fromBinary, createFileRegistry, create } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, ServiceDescriptorProtoSchema, MethodDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ConnectError, Code } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

const [descriptorSet, certFile, keyFile, mode] = process.argv.slice(2);
const fds = fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSet));
const kvFile = fds.file.find((f) => f.service.some((s) => s.name === "KVService"));
const method = (name, input, output, clientStreaming, serverStreaming) =>
  create(MethodDescriptorProtoSchema, {
    name, inputType: `.kv.v1.${input}`, outputType: `.kv.v1.${output}`, clientStreaming, serverStreaming,
  });
kvFile.service.push(create(ServiceDescriptorProtoSchema, {
  name: "KVStreams",
  method: [
    method("PutMany", "PutRequest", "GetResponse", true, false),
    method("Echo", "PutRequest", "WatchEvent", true, true),
    method("Stats", "GetRequest", "GetResponse", false, false),
  ],
}));
const registry = createFileRegistry(fds);
const kv = registry.getService("kv.v1.KVService");
const streams = registry.getService("kv.v1.KVStreams");
const store = new Map();
let connections = 0;
const enc = new TextEncoder();

const kvImpl = {
  get(req) {
    const v = store.get(req.key);
    return { value: v ?? new Uint8Array(), found: v !== undefined };
  },
  put(req, ctx) {
    if (req.key === "") throw new ConnectError("key must not be empty", Code.InvalidArgument);
    if (req.key === "slow") return new Promise((r) => setTimeout(() => r({}), 2000));
    store.set(req.key, req.value);
    ctx.responseHeader.set("x-kv-size", String(store.size));
    ctx.responseTrailer.set("x-kv-trailer", "done");
    return {};
  },
  delete(req) {
    return { found: store.delete(req.key) };
  },
  async *watch(req) {
    for (let i = 0; i < 3; i++) yield { type: 1, key: `${req.prefix}${i}`, value: new Uint8Array() };
  },
};

const streamsImpl = {
  async putMany(reqs) {
    const keys = [];
    for await (const req of reqs) {
      store.set(req.key, req.value);
      keys.push(req.key);
    }
    return { value: enc.encode(keys.join(",")), found: true };
  },
  async *echo(reqs) {
    for await (const req of reqs) yield { type: 1, key: req.key, value: req.value };
  },
  stats() {
    return { value: enc.encode(String(connections)), found: true };
  },
};

const handler = connectNodeAdapter({
  routes: (router) => {
    router.service(kv, kvImpl);
    router.service(streams, streamsImpl);
  },
});
const tlsOptions = () => ({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
const server = mode === "http1"
  ? https.createServer(tlsOptions(), handler)
  : certFile
  ? http2.createSecureServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), allowHTTP1: true }, handler)
  : http2.createServer({}, handler);
server.on(certFile ? "secureConnection" : "connection", () => connections++);
server.listen(0, "127.0.0.1", () => {
  console.log(`${certFile ? "https" : "http"}://127.0.0.1:${server.address().port}`);
});
process.on("SIGTERM", () => { server.close(); process.exit(0); });
