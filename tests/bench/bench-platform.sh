#!/bin/bash
# bench-platform.sh BUILD_DIR: the plugin platform's router, measured
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# kv-plugin (examples/kv) registers with a host (HOST_URL); wrk posts
# kv.v1.KVService/Get at 16 keep-alive connections:
#   direct      to kv-plugin itself
#   routed      through cp-host's router (/services/kv/<provider>/Get),
#               authenticated with a runtime identity cp-host issued
#   go-routed   the same through the Go stand-in's router
#               (cp-go-platform-host, connect-plugin-go's router.go);
#               skipped, saying why, without Go
# It also drives DiscoverService{kv} with wrk (discover.lua) at both hosts.
# Two layouts, each printed with its own ratios: "pinned", host and plugin
# on CPU 0 and wrk on CPU 1 (the router and the plugin share a core; with
# two cores, the routed path then has half the CPU the direct one has for
# its servers), then "shared", every process free on both CPUs (what an
# unpinned deployment of three processes on a 2-core machine gets;
# BENCH_SHARED=0 skips it). It prints req/s, p50 and p99 and the ratios
# routed/direct and routed/go-routed, and the p50 the router adds. It
# reports; it fails only when something did not run.
set -u
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=$ROOT/tests/bench
DURATION=${BENCH_DURATION:-4s}
ROUNDS=${BENCH_ROUNDS:-2}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TMP=$(mktemp -d)
PIDS=()
FAILED=0
cleanup () { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
fail () { echo "FAIL: $*" >&2; FAILED=1; }
PY=/usr/bin/python3

# start NAME CMD... : runs CMD pinned to the server CPU, waits for its URL
# (first stdout line) and sets URL.
start () {
  local name=$1; shift
  taskset -c "$SERVER_CPU" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  PIDS+=($!)
  URL=
  for _ in $(seq 200); do
    URL=$(head -n1 "$TMP/$name.out" 2>/dev/null)
    [ -n "$URL" ] && return 0
    sleep 0.05
  done
  fail "$name did not start: $(tail -n3 "$TMP/$name.err")"
  return 1
}

# json_call URL PROCEDURE JSON [ID TOKEN] → the JSON answer
json_call () {
  local extra=()
  [ $# -ge 5 ] && extra=(-H "X-Plugin-Runtime-ID: $4" -H "Authorization: Bearer $5")
  curl -s --max-time 5 -H 'Content-Type: application/json' "${extra[@]}" \
    --data "$3" "$1/$2"
}

# route HOST_URL: handshakes as "bench", waits until kv is discoverable,
# sets ROUTE_ID, ROUTE_TOKEN, ROUTE_PATH.
route () {
  local host=$1 hs disc
  hs=$(json_call "$host" connectplugin.v1.HandshakeService/Handshake \
    '{"coreProtocolVersion":1,"appProtocolVersion":1,"magicCookieKey":"CONNECT_PLUGIN","magicCookieValue":"d3f40b3c2e1a5f8b9c4d7e6a1b2c3d4e","selfId":"bench"}')
  ROUTE_ID=$(echo "$hs" | $PY -c 'import json,sys; print(json.load(sys.stdin)["runtimeId"])') || { fail "handshake: $hs"; return 1; }
  ROUTE_TOKEN=$(echo "$hs" | $PY -c 'import json,sys; print(json.load(sys.stdin)["runtimeToken"])')
  for _ in $(seq 100); do
    disc=$(json_call "$host" connectplugin.v1.ServiceRegistry/DiscoverService \
      '{"serviceType":"kv","minVersion":"1.0.0"}' "$ROUTE_ID" "$ROUTE_TOKEN")
    ROUTE_PATH=$(echo "$disc" | $PY -c 'import json,sys; print(json.load(sys.stdin)["endpoint"]["endpointUrl"])' 2>/dev/null) && break
    sleep 0.05
  done
  [ -n "${ROUTE_PATH:-}" ] || { fail "kv never became discoverable at $host: $disc"; return 1; }
  ROUTE_PATH=$ROUTE_PATH/Get
  export ROUTE_ID ROUTE_TOKEN ROUTE_PATH
}

declare -A RPS P50 P99
to_us () {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) u = n; else if (v ~ /ms$/) u = n * 1000;
    else if (v ~ /s$/) u = n * 1000000; else u = n; printf "%.0f", u }'
}
run_wrk () {
  local name=$1 url=$2 out rps
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c16 -d"$DURATION" --latency -s "$SRC/connect-routed.lua" "$url" 2>&1)
  rps=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
  if [ -z "$rps" ] || echo "$out" | grep -q 'Non-2xx'; then
    fail "wrk $name: $(echo "$out" | grep -E 'Non-2xx|Requests' | tr '\n' ' ')"
    return
  fi
  echo "  round $round: $name: $rps req/s" >&2
  if [ "$rps" -gt "${RPS[$name]:-0}" ]; then
    RPS[$name]=$rps
    P50[$name]=$(to_us "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
    P99[$name]=$(to_us "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
  fi
}

for tool in wrk taskset curl; do
  command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

# Our host and a kv-plugin registered with it.
start cp-host "$BUILD/connectplugin/tools/cp-host" --listen 127.0.0.1:0 || exit 1
OURS=$URL
HOST_URL=$OURS start kv-ours "$BUILD/examples/kv/kv-plugin" --listen 127.0.0.1:0 || exit 1
DIRECT=$URL
route "$OURS" || exit 1
OUR_ROUTE=("$ROUTE_ID" "$ROUTE_TOKEN" "$ROUTE_PATH")

# The Go stand-in's host and another kv-plugin registered with it.
GO_SKIP=
"$ROOT/tests/interop/go/build.sh" "$ROOT" "$BUILD/tests/interop/go/peers" >"$TMP/go-build.txt" 2>&1
case $? in
  0) ;;
  77) GO_SKIP="SKIP: Go is not installed" ;;
  *) GO_SKIP="SKIP: the Go peers did not build"; fail "$GO_SKIP" ;;
esac
if [ -z "$GO_SKIP" ]; then
  start go-host "$BUILD/tests/interop/go/peers/cp-go-platform-host" --listen 127.0.0.1:0 || exit 1
  GOHOST=$URL
  HOST_URL=$GOHOST start kv-go "$BUILD/examples/kv/kv-plugin" --listen 127.0.0.1:0 || exit 1
  route "$GOHOST" || exit 1
  GO_ROUTE=("$ROUTE_ID" "$ROUTE_TOKEN" "$ROUTE_PATH")
fi

# run_discover NAME URL ID TOKEN: wrk posts DiscoverService{kv} to a host.
declare -A DISC
run_discover () {
  local name=$1 url=$2 out rps
  out=$(CP_ID=$3 CP_TOKEN=$4 CP_SERVICE_TYPE=kv taskset -c "$LOAD_CPU" \
    wrk -t1 -c16 -d"$DURATION" -s "$SRC/discover.lua" "$url" 2>&1)
  rps=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
  if [ -z "$rps" ] || echo "$out" | grep -q 'Non-2xx' || ! echo "$out" | grep -q 'non-200 answers: 0$'; then
    fail "wrk discover $name: $(echo "$out" | grep -E 'Non-2xx|non-200|Requests' | tr '\n' ' ')"
    return
  fi
  echo "  round $round: discover $name: $rps calls/s" >&2
  [ "$rps" -gt "${DISC[$name]:-0}" ] && DISC[$name]=$rps
}

# measure LAYOUT: the rounds and the tables, with the processes placed as
# they are now.
measure () {
  local layout=$1
  RPS=() P50=() P99=() DISC=()
  for round in $(seq "$ROUNDS"); do
    run_discover ours "$OURS" "${OUR_ROUTE[0]}" "${OUR_ROUTE[1]}"
    [ -z "$GO_SKIP" ] && run_discover go "$GOHOST" "${GO_ROUTE[0]}" "${GO_ROUTE[1]}"
    export ROUTE_ID= ROUTE_TOKEN= ROUTE_PATH=/kv.v1.KVService/Get
    run_wrk direct "$DIRECT"
    export ROUTE_ID=${OUR_ROUTE[0]} ROUTE_TOKEN=${OUR_ROUTE[1]} ROUTE_PATH=${OUR_ROUTE[2]}
    run_wrk routed "$OURS"
    if [ -z "$GO_SKIP" ]; then
      export ROUTE_ID=${GO_ROUTE[0]} ROUTE_TOKEN=${GO_ROUTE[1]} ROUTE_PATH=${GO_ROUTE[2]}
      run_wrk go-routed "$GOHOST"
    fi
  done

  echo "== $layout: routed unary calls, kv.v1.KVService/Get, 16 connections (wrk -t1 -d$DURATION, best of $ROUNDS)"
  printf '%-10s %10s %9s %9s\n' path 'req/s' 'p50 µs' 'p99 µs'
  for n in direct routed go-routed; do
    [ -n "${RPS[$n]:-}" ] && printf '%-10s %10s %9s %9s\n' "$n" "${RPS[$n]}" "${P50[$n]}" "${P99[$n]}"
  done
  if [ -n "${RPS[routed]:-}" ] && [ -n "${RPS[direct]:-}" ]; then
    awk -v r="${RPS[routed]}" -v d="${RPS[direct]}" 'BEGIN { printf "routed / direct req/s: %.2fx (target >= 0.5x)\n", r / d }'
    echo "p50 added by the router: $(( ${P50[routed]} - ${P50[direct]} )) µs (target <= 100 µs)"
  fi
  if [ -n "${RPS[go-routed]:-}" ] && [ -n "${RPS[routed]:-}" ]; then
    awk -v r="${RPS[routed]}" -v g="${RPS[go-routed]}" 'BEGIN { printf "routed / go-routed req/s: %.2fx (target >= 1.5x)\n", r / g }'
  else
    echo "go-routed: ${GO_SKIP:-no result}"
  fi
  echo "== $layout: DiscoverService{kv} calls/s, 16 connections (wrk -t1 -d$DURATION, best of $ROUNDS)"
  [ -n "${DISC[ours]:-}" ] && echo "cp-host      ${DISC[ours]} calls/s (target >= 20000)"
  [ -n "${DISC[go]:-}" ] && echo "go host      ${DISC[go]} calls/s"
}

measure "pinned (servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU)"
if [ "${BENCH_SHARED:-1}" = 1 ] && [ "$SERVER_CPU" != "$LOAD_CPU" ]; then
  # The same processes, free to run on both CPUs (taskset changes a running
  # process's affinity, every thread of it with -a).
  ALL=$SERVER_CPU,$LOAD_CPU
  for p in "${PIDS[@]}"; do taskset -a -p -c "$ALL" "$p" >/dev/null 2>&1; done
  SERVER_CPU=$ALL LOAD_CPU=$ALL
  measure "shared (every process on CPUs $ALL, as the scheduler places them)"
fi
exit $FAILED
