// A connect-node gRPC-Web client exercising a KV server (ours) over HTTP/1.1, in the
// binary and JSON codecs: unary calls, a server stream, an error, a timeout.
//   node kv-grpc-web-client.mjs BASE_URL DESCRIPTOR_SET
// Prints one line per check; exits non-zero on the first failure.
import assert from "node:assert/strict";
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { loadKV } from "./kv-schema.mjs";

const [baseUrl, schemaPath] = process.argv.slice(2);
const { service, m } = loadKV(schemaPath);
const te = new TextEncoder();
const td = new TextDecoder();

async function expectCode(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    const err = ConnectError.from(e);
    assert.equal(err.code, code, `${what}: got ${Code[err.code]}: ${err.rawMessage}`);
    return err;
  }
  assert.fail(`${what}: no error`);
}

for (const useBinaryFormat of [true, false]) {
  const codec = useBinaryFormat ? "proto" : "json";
  const transport = createGrpcWebTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat });
  const kv = createClient(service, transport);
  const k = (s) => `${codec}/${s}`;

  // unary
  await kv[m.Put]({ key: k("a"), value: te.encode("apple") });
  let r = await kv[m.Get]({ key: k("a") });
  assert.equal(r.found, true);
  assert.equal(td.decode(r.value), "apple");
  const binary = new Uint8Array([0, 255, 1, 254, 0x80]);
  await kv[m.Put]({ key: k("bin"), value: binary });
  r = await kv[m.Get]({ key: k("bin") });
  assert.deepEqual(Array.from(r.value), Array.from(binary));
  r = await kv[m.Get]({ key: k("missing") });
  assert.equal(r.found, false);
  let d = await kv[m.Delete]({ key: k("a") });
  assert.equal(d.found, true);
  d = await kv[m.Delete]({ key: k("a") });
  assert.equal(d.found, false);
  console.log(`ok grpc-web ${codec} unary Put/Get/Delete`);

  // an error from the handler
  const err = await expectCode(kv[m.Put]({ key: "", value: te.encode("x") }), Code.InvalidArgument, "empty key");
  assert.match(err.rawMessage, /empty/);
  console.log(`ok grpc-web ${codec} error invalid_argument: ${err.rawMessage}`);

  // server streaming: watch, then make changes
  const ac = new AbortController();
  const events = [];
  const watching = (async () => {
    try {
      for await (const ev of kv[m.Watch]({ prefix: k("w/") }, { signal: ac.signal })) {
        events.push(ev);
        if (events.length === 3) ac.abort();
      }
    } catch (e) {
      if (ConnectError.from(e).code !== Code.Canceled) throw e;
    }
  })();
  await new Promise((res) => setTimeout(res, 200));
  await kv[m.Put]({ key: k("w/1"), value: te.encode("one") });
  await kv[m.Put]({ key: k("other"), value: te.encode("ignored") });
  await kv[m.Put]({ key: k("w/2"), value: te.encode("two") });
  await kv[m.Delete]({ key: k("w/1") });
  await watching;
  assert.deepEqual(events.map((e) => [e.type, e.key, td.decode(e.value)]), [
    [1, k("w/1"), "one"],
    [1, k("w/2"), "two"],
    [2, k("w/1"), ""],
  ]);
  console.log(`ok grpc-web ${codec} server stream Watch: ${events.length} events`);

  // a timeout: a quiet Watch with a 300 ms deadline ends in deadline_exceeded
  await expectCode((async () => {
    for await (const _ of kv[m.Watch]({ prefix: k("quiet/") }, { timeoutMs: 300 })) { /* none */ }
  })(), Code.DeadlineExceeded, "quiet watch with timeout");
  console.log(`ok grpc-web ${codec} timeout → deadline_exceeded`);
}
console.log("connect-node gRPC-Web client: all checks passed");
