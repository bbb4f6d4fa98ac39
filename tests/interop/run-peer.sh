#!/usr/bin/env bash
# run-peer.sh: interop checks between our KV server and real third-party peers.
#   run-peer.sh node-client KV_SERVER DESCRIPTOR_SET   connect-node client → our server
#   run-peer.sh buf-curl    KV_SERVER DESCRIPTOR_SET   buf curl → our server
# The server is started on 127.0.0.1:0 (its first stdout line is its URL) and
# stopped by PID. Exits 77 (skip) when the npm peers are not installed.
set -euo pipefail
mode=$1 server=$2 schema=$3
here=$(cd "$(dirname "$0")" && pwd)
peers=$here/node
if [ ! -d "$peers/node_modules/@connectrpc/connect-node" ] || ! command -v node >/dev/null; then
  echo "SKIP: npm peers not installed (run scripts/dev setup)"; exit 77
fi

out=$(mktemp)
"$server" --listen 127.0.0.1:0 >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$out"' EXIT
url=
for _ in $(seq 200); do
  url=$(head -n1 "$out" | grep '^http' || true)
  [ -n "$url" ] && break
  kill -0 $pid 2>/dev/null || { cat "$out"; echo "server exited"; exit 1; }
  sleep 0.05
done
[ -n "$url" ] || { echo "server did not print its URL"; exit 1; }
echo "server: $url"

check() { # check NAME EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    printf 'FAIL %s\n  expected: %s\n  actual:   %s\n' "$1" "$2" "$3"; exit 1
  fi
  echo "ok $1"
}

case $mode in
  node-client)
    timeout 60 node "$peers/kv-client.mjs" "$url" "$schema"
    ;;
  buf-curl)
    buf() { timeout 20 "$peers/node_modules/.bin/buf" curl --protocol connect --schema "$schema" "$@"; }
    flat() { tr -d ' \n'; }
    check "buf curl Put" '{}' "$(buf -d '{"key":"b","value":"AP8BgA=="}' "$url/kv.v1.KVService/Put" | flat)"
    check "buf curl Get" '{"value":"AP8BgA==","found":true}' "$(buf -d '{"key":"b"}' "$url/kv.v1.KVService/Get" | flat)"
    check "buf curl Get missing" '{}' "$(buf -d '{"key":"nope"}' "$url/kv.v1.KVService/Get" | flat)"
    check "buf curl Delete" '{"found":true}' "$(buf -d '{"key":"b"}' "$url/kv.v1.KVService/Delete" | flat)"
    set +e
    err=$(buf -d '{"key":""}' "$url/kv.v1.KVService/Put" 2>&1)
    rc=$?
    set -e
    check "buf curl error exit code" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
    check "buf curl error body" '{"code":"invalid_argument","message":"keymustnotbeempty"}' "$(echo "$err" | flat)"
    ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
echo "all checks passed"
