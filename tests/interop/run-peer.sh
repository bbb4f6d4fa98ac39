#!/usr/bin/env bash
# run-peer.sh: interop checks between our KV server and real third-party peers.
#   run-peer.sh node-client KV_SERVER DESCRIPTOR_SET   connect-node client → our server
#   run-peer.sh buf-curl    KV_SERVER DESCRIPTOR_SET   buf curl → our server
#   run-peer.sh node-grpc-web-client KV_SERVER DESCRIPTOR_SET   connect-node gRPC-Web → our server
#   run-peer.sh buf-curl-grpc-web    KV_SERVER DESCRIPTOR_SET   buf curl --protocol grpcweb → our server
#   run-peer.sh grpcurl              KV_SERVER DESCRIPTOR_SET   grpcurl (gRPC over h2c) → our server
#   run-peer.sh buf-curl-reflection  KV_PLUGIN                  buf curl without a schema, by our
#                                    server reflection over h2c, in each of its three protocols
# grpcurl (a Go program) is built once into
# ${XDG_CACHE_HOME:-$HOME/.cache}/connectplugin/grpcurl-$GRPCURL_VERSION/ and
# reused; without it and without Go, that mode exits 77 (skip).
# The server is started on 127.0.0.1:0 (its first stdout line is its URL) and
# stopped by PID. Exits 77 (skip) when the npm peers are not installed.
set -euo pipefail
mode=$1 server=$2 schema=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
peers=$here/node
if [ "$mode" = grpcurl ]; then
  version=${GRPCURL_VERSION:-v1.9.4}
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/connectplugin
  grpcurl=$cache/grpcurl-$version/grpcurl
  if [ ! -x "$grpcurl" ]; then
    command -v go >/dev/null || { echo "SKIP: grpcurl not built and Go not installed"; exit 77; }
    echo "building grpcurl $version into $cache/grpcurl-$version"
    GOPATH=$cache/go GOMODCACHE=$cache/go/pkg/mod GOFLAGS=-modcacherw GOTOOLCHAIN=local \
      GOBIN=$cache/grpcurl-$version go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$version" ||
      { echo "SKIP: could not build grpcurl"; exit 77; }
  fi
elif [ ! -d "$peers/node_modules/@connectrpc/connect-node" ] || ! command -v node >/dev/null; then
  echo "SKIP: npm peers not installed (run scripts/dev setup)"; exit 77
fi

out=$(mktemp)
server_args=(--listen 127.0.0.1:0)
[ "$mode" = buf-curl-reflection ] && server_args+=(--reflection)
"$server" "${server_args[@]}" >"$out" 2>&1 &
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
  node-grpc-web-client)
    timeout 60 node "$peers/kv-grpc-web-client.mjs" "$url" "$schema"
    ;;
  buf-curl-grpc-web)
    buf() { timeout 20 "$peers/node_modules/.bin/buf" curl --protocol grpcweb --schema "$schema" "$@"; }
    flat() { tr -d ' \n'; }
    check "buf curl grpcweb Put" '{}' "$(buf -d '{"key":"g","value":"AP8BgA=="}' "$url/kv.v1.KVService/Put" | flat)"
    check "buf curl grpcweb Get" '{"value":"AP8BgA==","found":true}' "$(buf -d '{"key":"g"}' "$url/kv.v1.KVService/Get" | flat)"
    set +e
    err=$(buf -d '{"key":""}' "$url/kv.v1.KVService/Put" 2>&1)
    rc=$?
    set -e
    check "buf curl grpcweb error exit code" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
    check "buf curl grpcweb error body" '{"code":"invalid_argument","message":"keymustnotbeempty"}' "$(echo "$err" | flat)"
    ;;
  grpcurl)
    hostport=${url#http://}
    g() { timeout 20 "$grpcurl" -plaintext -protoset "$schema" "$@"; }
    flat() { tr -d ' \n'; }
    check "grpcurl Put" '{}' "$(g -d '{"key":"c","value":"AP8BgA=="}' "$hostport" kv.v1.KVService/Put | flat)"
    check "grpcurl Get" '{"value":"AP8BgA==","found":true}' "$(g -d '{"key":"c"}' "$hostport" kv.v1.KVService/Get | flat)"
    check "grpcurl Get missing" '{}' "$(g -d '{"key":"nope"}' "$hostport" kv.v1.KVService/Get | flat)"
    set +e
    err=$(g -d '{"key":""}' "$hostport" kv.v1.KVService/Put 2>&1)
    rc=$?
    set -e
    check "grpcurl error exit code" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
    check "grpcurl error" 'ERROR:Code:InvalidArgumentMessage:keymustnotbeempty' "$(echo "$err" | flat)"
    ;;
  buf-curl-reflection)
    # No --schema: buf curl asks the server (grpc.reflection.v1, a bidi stream,
    # hence HTTP/2) for the descriptors, in Connect, gRPC and gRPC-Web.
    flat() { tr -d ' \n'; }
    for protocol in connect grpc grpcweb; do
      buf() { timeout 20 "$peers/node_modules/.bin/buf" curl --protocol $protocol --http2-prior-knowledge "$@"; }
      check "buf curl $protocol --list-services" \
        'connectplugin.health.v1.HealthServiceconnectplugin.v1.HandshakeServiceconnectplugin.v1.PluginControlgrpc.reflection.v1.ServerReflectionkv.v1.KVService' \
        "$(buf --list-services "$url" | sort | flat)"
      # every method of every service: each listed service must be described
      check "buf curl $protocol --list-methods" \
        'kv.v1.KVService/Deletekv.v1.KVService/Getkv.v1.KVService/Putkv.v1.KVService/Watch' \
        "$(buf --list-methods "$url" | grep '^kv\.' | sort | flat)"
      check "buf curl $protocol Put" '{}' "$(buf -d '{"key":"r","value":"AP8BgA=="}' "$url/kv.v1.KVService/Put" | flat)"
      check "buf curl $protocol Get" '{"value":"AP8BgA==","found":true}' "$(buf -d '{"key":"r"}' "$url/kv.v1.KVService/Get" | flat)"
      set +e
      err=$(buf -d '{"key":""}' "$url/kv.v1.KVService/Put" 2>&1)
      rc=$?
      set -e
      check "buf curl $protocol error exit code" 1 "$([ $rc -ne 0 ] && echo 1 || echo 0)"
      check "buf curl $protocol error body" '{"code":"invalid_argument","message":"keymustnotbeempty"}' "$(echo "$err" | flat)"
    done
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
