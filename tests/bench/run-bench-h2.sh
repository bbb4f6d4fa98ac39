#!/bin/bash
# run-bench-h2.sh: KV Get over HTTP/2 (h2c, prior knowledge), ours against connect-go
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   tests/bench/run-bench-h2.sh BUILD_DIR [BENCH_DURATION=3s BENCH_ROUNDS=3]
#
# h2load (Debian nghttp2-client) posts kv.v1.KVService/Get{key: "hello"} as
# a Connect unary call over 16 connections × 10 concurrent streams for
# BENCH_DURATION to bench-kv-server (our whole engine) and to cp-go-kv-h2c
# (connect-go on net/http's unencrypted HTTP/2, built by
# tests/interop/go/build.sh). Server on CPU 0, h2load on CPU 1; rounds
# interleave the servers and the best round of each counts. Every answer
# is checked (2xx and its 9 bytes; run_h2load of bench-lib.sh). Prints both
# rates and their ratio; fails below 1.50. run-bench-protocols.sh has the
# same row (with examples/kv kv-server) beside the rest of issue 18's table.
set -u
unset MALLOC_PERTURB_ MALLOC_CHECK_ G_SLICE G_DEBUG

BUILD=$(cd "${1:?usage: run-bench-h2.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$SRC/../.." && pwd)
DURATION=${BENCH_DURATION:-3s}
ROUNDS=${BENCH_ROUNDS:-3}
SERVER_CPU=0
LOAD_CPU=1

for tool in h2load taskset; do
  command -v $tool >/dev/null || { echo "run-bench-h2.sh: $tool is not installed" >&2; exit 77; }
done

TMP=$(mktemp -d /tmp/cp-bench-h2.XXXXXX)
# shellcheck source=bench-lib.sh
. "$SRC/bench-lib.sh"
cleanup () {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

build_go_peers "$BUILD"
if [ -n "$GO_SKIP" ]; then
  [ ${#FAILURES[@]} -gt 0 ] && exit 1
  exit 77
fi

printf '\n\005hello' >"$TMP/get.bin"
for round in $(seq "$ROUNDS"); do
  for name in ours go; do
    case $name in
      ours) prog=("$BUILD/tests/bench/bench-kv-server") ;;
      go)   prog=("$GO_PEERS/cp-go-kv-h2c") ;;
    esac
    start_server "$name" "${prog[@]}" --listen 127.0.0.1:0 || continue
    run_h2load "$name" "$SERVER_URL/kv.v1.KVService/Get" "$TMP/get.bin" 9 \
      -H 'content-type: application/proto' -H 'connect-protocol-version: 1'
    stop_server "$name"
  done
done
if [ ${#FAILURES[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${FAILURES[@]}" >&2
  exit 1
fi

OURS=${RPS[ours,h2]}
GO=${RPS[go,h2]}
RATIO=$(ratio "$OURS" "$GO")
printf 'KV Get over h2c, h2load -c 16 -m 10 (%s each, best of %s):\n' "$DURATION" "$ROUNDS"
printf '  ours (bench-kv-server)   %10s req/s\n' "$OURS"
printf '  connect-go (h2c)         %10s req/s\n' "$GO"
printf '  ratio                    %10s (>= 1.50)\n' "$RATIO"
awk -v r="$RATIO" 'BEGIN { exit !(r >= 1.5) }' || { echo "FAILED: ratio $RATIO < 1.50" >&2; exit 1; }
