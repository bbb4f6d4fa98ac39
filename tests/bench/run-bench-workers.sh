#!/bin/bash
# run-bench-workers.sh: KV Get on several cores, kv-server --workers 2 against Go
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   tests/bench/run-bench-workers.sh BUILD_DIR
#
# Issue 18's row "N workers on 2 cores, 64 conns, load unpinned": wrk
# (Debian) posts kv.v1.KVService/Get{key: "hello"} as a binary Connect
# unary call (connect-get.lua) over 64 keep-alive connections, nothing
# pinned (servers and wrk share the machine's cores), to:
#   workers-2  examples/kv/kv-server --workers 2 (CpRpcServer:n-workers)
#   workers-1  examples/kv/kv-server, one thread (the same run's baseline)
#   go         cp-go-kv-plugin (connect-plugin-go's KV example on
#              connectrpc.com/connect and net/http, built by
#              tests/interop/go/build.sh) with GOMAXPROCS=2
# Each server gets Put hello=world first, so every Get finds a value, and
# the answer is checked. Rounds alternate the servers; the best round of
# each counts. Prints req/s and the ratios; it reports, it does not fail
# on the target (>= 1.50 x Go). Exit 77 when wrk, curl or Go is missing.
#
# Environment: BENCH_DURATION (wrk -d, default 4s), BENCH_ROUNDS (default 3),
# BENCH_CONNECTIONS (default 64), BENCH_WRK_THREADS (default 2).

set -u

BUILD=$(cd "${1:?usage: run-bench-workers.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$SRC/../.." && pwd)
DURATION=${BENCH_DURATION:-4s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
KV_SERVER=$BUILD/examples/kv/kv-server

unset MALLOC_PERTURB_ MALLOC_CHECK_ G_SLICE G_DEBUG G_MESSAGES_DEBUG
unset CONNECTPLUGIN_LISTEN PORT HOST_URL

for tool in wrk curl; do
  command -v $tool >/dev/null || { echo "run-bench-workers.sh: $tool is not installed" >&2; exit 77; }
done
[ -x "$KV_SERVER" ] || { echo "run-bench-workers.sh: $KV_SERVER is not built" >&2; exit 1; }

TMP=$(mktemp -d /tmp/cp-bench-workers.XXXXXX)
SERVER_PID=
cleanup () {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fail () { echo "run-bench-workers.sh: $*" >&2; exit 1; }

GO_PEERS=$BUILD/tests/interop/go/peers
"$ROOT/tests/interop/go/build.sh" "$ROOT" "$GO_PEERS" >"$TMP/go-build.txt" 2>&1
case $? in
  0)  ;;
  77) grep -m1 SKIP "$TMP/go-build.txt" >&2; exit 77 ;;
  *)  fail "building the Go peer failed: $(tail -n3 "$TMP/go-build.txt")" ;;
esac
GO_VERSION=$(go env GOVERSION 2>/dev/null || PATH=$PATH:/usr/local/go/bin go env GOVERSION)

# start NAME ENV... -- PROGRAM ARGS...: starts a server, sets URL.
start () {
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$@" --listen 127.0.0.1:0 >"$TMP/$name.out" 2>"$TMP/$name.err" &
  SERVER_PID=$!
  for _ in $(seq 200); do [ -s "$TMP/$name.out" ] && break; sleep 0.05; done
  URL=$(head -n1 "$TMP/$name.out")
  [ -n "$URL" ] || fail "$name did not start: $(cat "$TMP/$name.err")"
  # Put hello=world (JSON: value is base64), then check the binary Get.
  curl -sf -X POST -H 'Content-Type: application/json' -d '{"key":"hello","value":"d29ybGQ="}' \
    "$URL/kv.v1.KVService/Put" >/dev/null || fail "$name: Put failed"
  printf '\n\005hello' >"$TMP/get.bin"
  curl -sf -X POST -H 'Content-Type: application/proto' -H 'Connect-Protocol-Version: 1' \
    --data-binary @"$TMP/get.bin" "$URL/kv.v1.KVService/Get" | grep -q world ||
    fail "$name: Get did not answer world"
}

stop () {
  kill -TERM "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
}

# measure NAME: wrk against $URL; prints req/s (fails on errors).
measure () {
  local name=$1
  wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" -s "$SRC/connect-get.lua" "$URL" \
    >"$TMP/$name.wrk" 2>&1 || fail "$name: wrk failed: $(cat "$TMP/$name.wrk")"
  if grep -qE 'Non-2xx|Socket errors' "$TMP/$name.wrk"; then
    fail "$name: errors under load: $(grep -E 'Non-2xx|Socket errors' "$TMP/$name.wrk")"
  fi
  sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$TMP/$name.wrk"
}

declare -A BEST=([workers-2]=0 [workers-1]=0 [go]=0)
echo "KV Get, Connect unary over HTTP/1.1: wrk -t$WRK_THREADS -c$CONNS -d$DURATION, unpinned on $(nproc) CPUs, best of $ROUNDS rounds" >&2
for round in $(seq "$ROUNDS"); do
  for name in workers-2 go workers-1; do
    case $name in
      workers-2) start "$name" -- "$KV_SERVER" --workers 2 ;;
      workers-1) start "$name" -- "$KV_SERVER" --workers 1 ;;
      go)        start "$name" GOMAXPROCS=2 -- "$GO_PEERS/cp-go-kv-plugin" ;;
    esac
    r=$(measure "$name")
    stop
    echo "  round $round: $name $r req/s" >&2
    BEST[$name]=$(awk -v a="${BEST[$name]}" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
  done
done

ratio () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
R2=$(ratio "${BEST[workers-2]}" "${BEST[go]}")
R1=$(ratio "${BEST[workers-1]}" "${BEST[go]}")
RS=$(ratio "${BEST[workers-2]}" "${BEST[workers-1]}")
echo "== N workers on $(nproc) cores, $CONNS connections, load unpinned (issue 18)"
printf '  %-44s %10.0f req/s\n' "kv-server --workers 2" "${BEST[workers-2]}"
printf '  %-44s %10.0f req/s\n' "kv-server --workers 1" "${BEST[workers-1]}"
printf '  %-44s %10.0f req/s\n' "cp-go-kv-plugin, GOMAXPROCS=2 ($GO_VERSION)" "${BEST[go]}"
printf '  %-44s %10s (target >= 1.50)\n' "ratio --workers 2 / Go" "$R2"
printf '  %-44s %10s\n' "ratio --workers 1 / Go" "$R1"
printf '  %-44s %10s\n' "ratio --workers 2 / --workers 1" "$RS"
