#!/bin/sh
# h2-connect.sh SERVER: the KV engine over h2c (prior knowledge) answers a
# Connect unary call and a server stream from nghttp (nghttp2-client), a
# real HTTP/2 client. SERVER takes "--listen 127.0.0.1:0" and prints its URL
# first (bench-kv-server: Get "hello" → "world"; Watch "count:N" → N events).
# Exit 77 (skip) without nghttp.
set -eu

server=$1
command -v nghttp >/dev/null 2>&1 || { echo "SKIP: nghttp (Debian nghttp2-client) is not installed" >&2; exit 77; }

tmp=$(mktemp -d)
pid=
cleanup () {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"$server" --listen 127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server.err" &
pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/server.out" ] && break
  sleep 0.05
done
url=$(head -n 1 "$tmp/server.out")
[ -n "$url" ] || { echo "the server did not start: $(cat "$tmp/server.err")" >&2; exit 1; }

hex () { od -An -v -tx1 "$1" | tr -d ' \n'; }

# Unary: GetRequest{key: "hello"} → GetResponse{value: "world", found: true}
printf '\n\005hello' >"$tmp/get.bin"
nghttp -v -d "$tmp/get.bin" -H 'content-type: application/proto' \
  -H 'connect-protocol-version: 1' "$url/kv.v1.KVService/Get" >"$tmp/get.log" 2>&1
grep -q ':status: 200' "$tmp/get.log" || { cat "$tmp/get.log"; exit 1; }
nghttp -d "$tmp/get.bin" -H 'content-type: application/proto' \
  -H 'connect-protocol-version: 1' "$url/kv.v1.KVService/Get" >"$tmp/get.out"
[ "$(hex "$tmp/get.out")" = 0a05776f726c641001 ] || { echo "unary: $(hex "$tmp/get.out")" >&2; exit 1; }
echo "unary over h2c: ok"

# Server stream: an enveloped WatchRequest{prefix: "count:3"}: three
# events (flag 0), then the end-of-stream envelope (flag 2, "{}").
printf '\000\000\000\000\011\n\007count:3' >"$tmp/watch.bin"
nghttp -d "$tmp/watch.bin" -H 'content-type: application/connect+proto' \
  -H 'connect-protocol-version: 1' "$url/kv.v1.KVService/Watch" >"$tmp/watch.out"
body=$(hex "$tmp/watch.out")
case $body in
  *02000000027b7d) ;;
  *) echo "stream: no end-of-stream envelope: $body" >&2; exit 1 ;;
esac
n=$(python3 - "$tmp/watch.out" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
i = n = 0
while i + 5 <= len(data):
    flags, size = data[i], int.from_bytes(data[i+1:i+5], 'big')
    if flags == 0:
        n += 1
    i += 5 + size
print(n if i == len(data) else -1)
PY
)
[ "$n" = 3 ] || { echo "stream: $n events, expected 3: $body" >&2; exit 1; }
echo "server stream over h2c: ok (3 events and the end of stream)"
