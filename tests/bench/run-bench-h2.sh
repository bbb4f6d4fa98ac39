#!/bin/bash
# run-bench-h2.sh: KV Get over HTTP/2 (h2c, prior knowledge), ours against connect-go
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   tests/bench/run-bench-h2.sh BUILD_DIR [BENCH_REQUESTS=200000 BENCH_ROUNDS=3]
#
# h2load (Debian nghttp2-client) posts kv.v1.KVService/Get{key: "hello"} as
# a Connect unary call over 16 connections × 10 concurrent streams to
# bench-kv-server (our whole engine) and to cp-go-kv-h2c (connect-go on
# net/http's unencrypted HTTP/2, built by tests/interop/go/build.sh). Server
# on CPU 0, h2load on CPU 1; the best of BENCH_ROUNDS rounds counts. Prints
# both rates and their ratio; fails below 1.50.
unset MALLOC_PERTURB_ MALLOC_CHECK_ G_SLICE G_DEBUG

BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REQUESTS=${BENCH_REQUESTS:-200000}
ROUNDS=${BENCH_ROUNDS:-3}
SERVER_CPU=0
LOAD_CPU=1

for tool in h2load taskset; do
  command -v $tool >/dev/null || { echo "run-bench-h2.sh: $tool is not installed" >&2; exit 77; }
done

TMP=$(mktemp -d /tmp/cp-bench-h2.XXXXXX)
SERVER_PID=
cleanup () {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

GO_PEERS=$BUILD/tests/interop/go/peers
"$ROOT/tests/interop/go/build.sh" "$ROOT" "$GO_PEERS" >"$TMP/go-build.txt" 2>&1
case $? in
  0)  ;;
  77) grep -m1 SKIP "$TMP/go-build.txt" >&2; exit 77 ;;
  *)  echo "building the Go peer failed: $(tail -n3 "$TMP/go-build.txt")" >&2; exit 1 ;;
esac

printf '\n\005hello' >"$TMP/get.bin"

# rate NAME PROGRAM...: prints the best req/s of h2load over the rounds.
rate () {
  local name=$1 best=0; shift
  for _ in $(seq "$ROUNDS"); do
    taskset -c "$SERVER_CPU" "$@" --listen 127.0.0.1:0 >"$TMP/$name.out" 2>"$TMP/$name.err" &
    SERVER_PID=$!
    for _ in $(seq 100); do [ -s "$TMP/$name.out" ] && break; sleep 0.05; done
    local url
    url=$(head -n1 "$TMP/$name.out")
    [ -n "$url" ] || { echo "$name did not start: $(cat "$TMP/$name.err")" >&2; exit 1; }
    taskset -c "$LOAD_CPU" h2load -n "$REQUESTS" -c 16 -m 10 -d "$TMP/get.bin" \
      -H 'content-type: application/proto' -H 'connect-protocol-version: 1' \
      "$url/kv.v1.KVService/Get" >"$TMP/$name.h2load" 2>&1
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
    grep -q "$REQUESTS succeeded, 0 failed" "$TMP/$name.h2load" &&
      grep -q "status codes: $REQUESTS 2xx" "$TMP/$name.h2load" ||
      { echo "$name: not every request succeeded:" >&2; cat "$TMP/$name.h2load" >&2; exit 1; }
    local r
    r=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$TMP/$name.h2load")
    best=$(awk -v a="$best" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
  done
  echo "$best"
}

OURS=$(rate ours "$BUILD/tests/bench/bench-kv-server") || exit 1
GO=$(rate go "$GO_PEERS/cp-go-kv-h2c") || exit 1
RATIO=$(awk -v a="$OURS" -v b="$GO" 'BEGIN { printf "%.2f", a / b }')
printf 'KV Get over h2c, h2load -c 16 -m 10 (%s requests, best of %s):\n' "$REQUESTS" "$ROUNDS"
printf '  ours (bench-kv-server)   %10.0f req/s\n' "$OURS"
printf '  connect-go (h2c)         %10.0f req/s\n' "$GO"
printf '  ratio                    %10s (>= 1.50)\n' "$RATIO"
awk -v r="$RATIO" 'BEGIN { exit !(r >= 1.5) }' || { echo "FAILED: ratio $RATIO < 1.50" >&2; exit 1; }
