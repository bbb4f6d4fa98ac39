#!/bin/bash
# run-bench.sh: connectplugin's benchmarks, in one go, on 127.0.0.1
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   tests/bench/run-bench.sh BUILD_DIR
#
# Servers run pinned to one CPU (taskset -c 0), load generators to the other
# (taskset -c 1). wrk (Debian) posts a binary Connect unary request
# (connect-get.lua) at 1 and 16 keep-alive connections to:
#   gio-echo   bare HTTP/1.1 echo on GIO sockets (the ceiling of our design)
#   soup-echo  bare SoupServer echo (what we left behind)
#   ours       bench-kv-server: kv.v1.KVService/Get through the whole engine
#   ours-gzip  the same, the client accepting gzip (as CpChannel does)
#   kv-plugin  examples/kv/kv-plugin: the KV example plugin (CpServer, with
#              handshake, health, PluginControl; logs each call to stderr)
#   go-plugin  connect-plugin-go's KV example plugin as tests/interop/go
#              builds it (cp-go-kv-plugin: connectrpc.com/connect on Go's
#              net/http), built here with tests/interop/go/build.sh; its
#              rows are skipped, saying why, when Go is not installed
# (both plugins get Put hello=world first, so every Get finds a value)
# then measures server-streaming messages/s (and server memory under a slow
# reader) and our client's sequential unary calls/s over a unix socket.
# Against the Go plugin it also runs bench-plugin on both plugins (spawn →
# first answered Get, raw and through CpProcessDiscovery + CpClient, median
# of 20; VmRSS idle after 1,000 calls) and prints the ratios ours/Go next to
# issue 9's targets.
# Diagnostic rows beside the targets: the stream with the handler awaiting
# only every 64th send, the stream offered gzip, and the client against a
# server with compress-min-bytes=1024. A baseline variant for the transport
# owners: bench-gio-echo --can-recurse (see profile-server.sh for profiling).
#
# It prints ratios measured in the same run next to the project's targets; it
# reports, it does not fail on targets. It exits non-zero only when a
# benchmark could not run or got wrong answers.
#
# Environment: BENCH_DURATION (wrk -d, default 4s), BENCH_ROUNDS (default 2;
# the best round of each server counts), SERVER_CPU (0), LOAD_CPU (1).

set -u

BUILD=$(cd "${1:?usage: run-bench.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$SRC/../.." && pwd)
if [ -x "$BUILD/tests/bench/bench-gio-echo" ]; then
  BIN=$BUILD/tests/bench
else
  BIN=$BUILD
fi
DURATION=${BENCH_DURATION:-4s}
ROUNDS=${BENCH_ROUNDS:-2}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
if [ "$(nproc)" -lt 2 ]; then
  echo "warning: fewer than 2 CPUs; server and load share CPU 0" >&2
  SERVER_CPU=0
  LOAD_CPU=0
fi

# meson test sets MALLOC_PERTURB_ (memset on every malloc/free): not what we measure.
unset MALLOC_PERTURB_ MALLOC_CHECK_ G_SLICE G_DEBUG
# Plugins listen where --listen says, standalone.
unset CONNECTPLUGIN_LISTEN PORT HOST_URL

for tool in wrk taskset curl; do
  if ! command -v $tool >/dev/null; then
    echo "run-bench.sh: $tool is not installed" >&2
    exit 77
  fi
done

TMP=$(mktemp -d /tmp/cp-bench.XXXXXX)
# fail, start_server, stop_server, check_answer, put_hello, run_wrk, ratio,
# field, build_go_peers (shared with run-bench-protocols.sh)
# shellcheck source=bench-lib.sh
. "$SRC/bench-lib.sh"

cleanup () {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

# ---- The Go peer (issue 9) ----
KV_PLUGIN=$BUILD/examples/kv/kv-plugin
if [ ! -x "$KV_PLUGIN" ]; then
  fail "$KV_PLUGIN is not built"
fi
build_go_peers "$BUILD"
GO_PLUGIN=$GO_PEERS/cp-go-kv-plugin

ECHO_BODY=0a0568656c6c6f
# GetResponse{value: "world", found: true}
KV_BODY=0a05776f726c641001

echo "connectplugin benchmarks: servers on CPU $SERVER_CPU, load on CPU $LOAD_CPU, wrk -t1 -d$DURATION" >&2

# ---- HTTP unary: the three servers under wrk ----
NAMES=(gio-echo soup-echo ours ours-gzip kv-plugin)
[ -z "$GO_SKIP" ] && NAMES+=(go-plugin)
for name in "${NAMES[@]}"; do
  for conns in 1 16; do
    RPS[$name,$conns]=0; P50[$name,$conns]=0; P99[$name,$conns]=0
  done
done
# Rounds interleave the servers, and the best round counts: a shared machine is
# noisy, and noise only ever makes a server look slower.
for round in $(seq "$ROUNDS"); do
  for name in "${NAMES[@]}"; do
    script=connect-get.lua
    put=false
    case $name in
      gio-echo)  prog=("$BIN/bench-gio-echo"  --listen 127.0.0.1:0); expected=$ECHO_BODY ;;
      soup-echo) prog=("$BIN/bench-soup-echo" --listen 127.0.0.1:0); expected=$ECHO_BODY ;;
      ours)      prog=("$BIN/bench-kv-server" --listen 127.0.0.1:0); expected=$KV_BODY ;;
      ours-gzip) prog=("$BIN/bench-kv-server" --listen 127.0.0.1:0); expected=$KV_BODY
                 script=connect-get-gzip.lua ;;
      kv-plugin) prog=("$KV_PLUGIN" --listen 127.0.0.1:0); expected=$KV_BODY; put=true ;;
      go-plugin) prog=("$GO_PLUGIN" --listen 127.0.0.1:0); expected=$KV_BODY; put=true ;;
    esac
    start_server "$name" "${prog[@]}" || continue
    if { ! $put || put_hello "$name" "$SERVER_URL"; } && check_answer "$name" "$SERVER_URL" "$expected"; then
      for conns in 1 16; do
        run_wrk "$name" "$conns" "$SERVER_URL" "$script"
      done
      check_answer "$name (after load)" "$SERVER_URL" "$expected"
    fi
    stop_server "$name"
  done
done

# ---- Server streaming ----
STREAM_RAW= STREAM_BATCH= STREAM_GZIP= STREAM_CHANNEL= STREAM_SLOW=
if start_server stream "$BIN/bench-kv-server" --listen 127.0.0.1:0; then
  STREAM_RAW=$(taskset -c "$LOAD_CPU" "$BIN/bench-stream" --url "$SERVER_URL" --count 1000000 --max-seconds 4 2>"$TMP/stream.txt") \
    || fail "bench-stream (raw): $(tail -n2 "$TMP/stream.txt")"
  STREAM_BATCH=$(taskset -c "$LOAD_CPU" "$BIN/bench-stream" --url "$SERVER_URL" --batch --count 1000000 --max-seconds 3 2>"$TMP/stream.txt") \
    || fail "bench-stream (batched): $(tail -n2 "$TMP/stream.txt")"
  STREAM_GZIP=$(taskset -c "$LOAD_CPU" "$BIN/bench-stream" --url "$SERVER_URL" --accept-gzip --count 100000 --max-seconds 3 2>"$TMP/stream.txt") \
    || fail "bench-stream (gzip): $(tail -n2 "$TMP/stream.txt")"
  STREAM_CHANNEL=$(taskset -c "$LOAD_CPU" "$BIN/bench-stream" --url "$SERVER_URL" --channel --count 300000 --max-seconds 3 2>"$TMP/stream.txt") \
    || fail "bench-stream (CpChannel): $(tail -n2 "$TMP/stream.txt")"
  stop_server stream
fi
if start_server stream-slow "$BIN/bench-kv-server" --listen 127.0.0.1:0; then
  STREAM_SLOW=$(taskset -c "$LOAD_CPU" "$BIN/bench-stream" --url "$SERVER_URL" --slow --seconds 3 \
                --count 1000000 --server-pid "$SERVER_PID" 2>"$TMP/stream.txt") \
    || fail "bench-stream (slow reader): $(tail -n2 "$TMP/stream.txt")"
  stop_server stream-slow
fi

# ---- Client: sequential unary calls over a unix socket ----
CLIENT= CLIENT_NOGZIP=
if start_server client "$BIN/bench-kv-server" --listen "unix:$TMP/kv.sock"; then
  CLIENT=$(taskset -c "$LOAD_CPU" "$BIN/bench-client" --url "$SERVER_URL" --seconds 3 2>"$TMP/client.txt") \
    || fail "bench-client: $(tail -n2 "$TMP/client.txt")"
  stop_server client
fi
# The same with the server leaving small responses uncompressed.
if start_server client-nogzip "$BIN/bench-kv-server" --listen "unix:$TMP/kv2.sock" --compress-min-bytes 1024; then
  CLIENT_NOGZIP=$(taskset -c "$LOAD_CPU" "$BIN/bench-client" --url "$SERVER_URL" --seconds 2 2>"$TMP/client.txt") \
    || fail "bench-client (compress-min-bytes 1024): $(tail -n2 "$TMP/client.txt")"
  stop_server client-nogzip
fi

# ---- Plugins: spawn → first Get, idle memory (bench-plugin on both) ----
PLUGIN_OURS= PLUGIN_GO=
if [ -x "$KV_PLUGIN" ]; then
  PLUGIN_OURS=$("$BIN/bench-plugin" --plugin "$KV_PLUGIN" --runs 20 --calls 1000 2>"$TMP/plugin.txt" | grep '^RESULT') \
    || fail "bench-plugin (kv-plugin): $(tail -n2 "$TMP/plugin.txt")"
fi
if [ -z "$GO_SKIP" ]; then
  PLUGIN_GO=$("$BIN/bench-plugin" --plugin "$GO_PLUGIN" --label cp-go-kv-plugin --runs 20 --calls 1000 \
              2>"$TMP/plugin.txt" | grep '^RESULT') \
    || fail "bench-plugin (cp-go-kv-plugin): $(tail -n2 "$TMP/plugin.txt")"
fi

# ---- Report ----
echo
echo "== HTTP/1.1 unary, binary Connect POST (wrk -t1 -d$DURATION, best of $ROUNDS rounds; server CPU $SERVER_CPU, wrk CPU $LOAD_CPU)"
printf '%-10s %5s %10s %9s %9s\n' server conns req/s p50_us p99_us
for name in "${NAMES[@]}"; do
  for conns in 1 16; do
    printf '%-10s %5s %10s %9s %9s\n' "$name" "$conns" "${RPS[$name,$conns]}" \
      "${P50[$name,$conns]}" "${P99[$name,$conns]}"
  done
done
echo
printf '%-22s %6s %6s   %s\n' ratio 'c=1' 'c=16' 'target (c=16)'
printf '%-22s %6s %6s   %s\n' ours/gio-echo "$(ratio "${RPS[ours,1]}" "${RPS[gio-echo,1]}")" \
  "$(ratio "${RPS[ours,16]}" "${RPS[gio-echo,16]}")" '>= 0.70'
printf '%-22s %6s %6s   %s\n' ours/soup-echo "$(ratio "${RPS[ours,1]}" "${RPS[soup-echo,1]}")" \
  "$(ratio "${RPS[ours,16]}" "${RPS[soup-echo,16]}")" '~ 3x'
printf '%-22s %6s %6s   %s\n' ours-gzip/ours "$(ratio "${RPS[ours-gzip,1]}" "${RPS[ours,1]}")" \
  "$(ratio "${RPS[ours-gzip,16]}" "${RPS[ours,16]}")" '(Accept-Encoding: gzip, as CpChannel sends)'
printf '%-22s %6s %6s   %s\n' gio-echo/soup-echo "$(ratio "${RPS[gio-echo,1]}" "${RPS[soup-echo,1]}")" \
  "$(ratio "${RPS[gio-echo,16]}" "${RPS[soup-echo,16]}")" '(design note: ~4.9x)'

echo
echo "== Server streaming (kv Watch, 28-byte envelopes; handler sends with cp_invocation_send_message[_async])"
# stream_row LABEL RESULT [TARGET]
stream_row () {
  if [ -n "$2" ]; then
    printf '%-44s %8s msgs/s  (%s msgs in %s s, complete=%s)  %s\n' "$1" "$(field msgs_per_s "$2")" \
      "$(field messages "$2")" "$(field seconds "$2")" "$(field complete "$2")" "${3:-}"
  else
    printf '%-44s %8s\n' "$1" n/a
  fi
}
stream_row 'raw reader, each send awaited' "$STREAM_RAW" 'target >= 300000'
stream_row 'raw reader, 63 queued + 1 awaited' "$STREAM_BATCH"
stream_row 'raw reader, Connect-Accept-Encoding: gzip' "$STREAM_GZIP" '(each message gzipped)'
stream_row 'CpChannel CpResponseStream reader' "$STREAM_CHANNEL" '(client + server; offers gzip)'
if [ -n "$STREAM_SLOW" ]; then
  rb=$(field rss_before_kb "$STREAM_SLOW"); ra=$(field rss_after_kb "$STREAM_SLOW")
  hb=$(field hwm_before_kb "$STREAM_SLOW"); ha=$(field hwm_after_kb "$STREAM_SLOW")
  printf 'slow reader (%s s, %s msgs read of 1000000): server VmRSS %s -> %s kB, VmHWM %s -> %s kB (growth %s kB)   target: flat\n' \
    "$(field seconds "$STREAM_SLOW")" "$(field messages "$STREAM_SLOW")" "$rb" "$ra" "$hb" "$ha" $((ha - hb))
else
  echo "slow reader: n/a"
fi

echo
echo "== Client: sequential unary Get through CpChannel over a unix socket"
# client_row LABEL RESULT [TARGET]
client_row () {
  if [ -n "$2" ]; then
    printf '%-44s %8s calls/s  p50 %s us  p99 %s us  %s\n' "$1" "$(field calls_per_s "$2")" \
      "$(field p50_us "$2")" "$(field p99_us "$2")" "${3:-}"
  else
    printf '%-44s %8s\n' "$1" n/a
  fi
}
client_row 'CpChannel -> CpRpcServer (unix socket)' "$CLIENT" 'target >= 8000'
client_row '  same, server compress-min-bytes=1024' "$CLIENT_NOGZIP" '(responses not gzipped)'

echo
echo "== connect-plugin-go peer (issue 9): our kv-plugin vs cp-go-kv-plugin (connectrpc.com/connect on net/http${GO_VERSION:+, $GO_VERSION})"
if [ -n "$GO_SKIP" ]; then
  echo "$GO_SKIP; no Go rows"
else
  echo "(Get: same wrk runs as above, servers on CPU $SERVER_CPU, so GOMAXPROCS=1; start-up and memory: bench-plugin, unpinned, median of 20)"
  # go_row LABEL OURS GO TARGET_TEXT TARGET_KIND(min:X | max:X | -) [UNIT]
  go_row () {
    local r verdict=
    r=$(ratio "$2" "$3")
    case $5 in
      min:*) verdict=$(awk -v r="$r" -v t="${5#min:}" 'BEGIN { if (r == "n/a") print "n/a"; else if (r + 0 >= t + 0) print "met"; else printf "behind by %.0f%%", (1 - r / t) * 100 }') ;;
      max:*) verdict=$(awk -v r="$r" -v t="${5#max:}" 'BEGIN { if (r == "n/a") print "n/a"; else if (r + 0 < t + 0) print "met"; else printf "behind by %.0f%%", (r - 1) * 100 }') ;;
    esac
    printf '%-46s %10s %10s %7s   %-9s %s\n' "$1" "$2" "$3" "$r" "$4" "$verdict"
  }
  printf '%-46s %10s %10s %7s   %s\n' '' ours Go ours/Go target
  go_row 'Get req/s, 1 connection' "${RPS[kv-plugin,1]}" "${RPS[go-plugin,1]}" '' -
  go_row 'Get req/s, 16 connections' "${RPS[kv-plugin,16]}" "${RPS[go-plugin,16]}" '>= 1.50' min:1.5
  go_row '  Get p50 us, 1 connection' "${P50[kv-plugin,1]}" "${P50[go-plugin,1]}" '' -
  go_row '  Get p99 us, 1 connection' "${P99[kv-plugin,1]}" "${P99[go-plugin,1]}" '' -
  go_row '  Get p50 us, 16 connections' "${P50[kv-plugin,16]}" "${P50[go-plugin,16]}" '' -
  go_row '  Get p99 us, 16 connections' "${P99[kv-plugin,16]}" "${P99[go-plugin,16]}" '' -
  go_row '  engine only (bench-kv-server) req/s, c=16' "${RPS[ours,16]}" "${RPS[go-plugin,16]}" '(>= 1.50)' min:1.5
  go_row 'spawn -> first Get ms (raw HTTP, new conn)' "$(field raw_first_get_ms "$PLUGIN_OURS")" \
    "$(field raw_first_get_ms "$PLUGIN_GO")" '< 1.00' max:1
  go_row 'launch -> first Get ms (CpClient, handshake)' "$(field first_rpc_ms "$PLUGIN_OURS")" \
    "$(field first_rpc_ms "$PLUGIN_GO")" '< 1.00' max:1
  go_row 'VmRSS kB, idle after 1000 calls' "$(field rss_after_kb "$PLUGIN_OURS")" \
    "$(field rss_after_kb "$PLUGIN_GO")" '< 1.00' max:1
  go_row '  VmRSS kB, idle after start-up' "$(field rss_idle_kb "$PLUGIN_OURS")" \
    "$(field rss_idle_kb "$PLUGIN_GO")" '' -
fi

if [ ${#FAILURES[@]} -gt 0 ]; then
  echo
  echo "Benchmarks that could not run properly:"
  printf '  - %s\n' "${FAILURES[@]}"
  exit 1
fi
exit 0
