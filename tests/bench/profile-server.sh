#!/bin/bash
# profile-server.sh: where does a benchmark server spend its time under wrk?
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   tests/bench/profile-server.sh BUILD_DIR [ours|kv-plugin|gio-echo|soup-echo] [perf|callgrind] [CONNS]
#
# Runs the server pinned to CPU 0 under `perf record -g` (default) or
# `valgrind --tool=callgrind`, loads it with wrk (connect-get.lua, CPU 1) for a
# few seconds, and prints the hottest symbols (inclusive and self).
# Not part of any test suite: a tool for the transport and engine owners.

set -u
BUILD=${1:?usage: profile-server.sh BUILD_DIR [ours|kv-plugin|gio-echo|soup-echo] [perf|callgrind] [CONNS]}
WHICH=${2:-ours}
TOOL=${3:-perf}
CONNS=${4:-16}
SRC=$(cd "$(dirname "$0")" && pwd)
BIN=$BUILD/tests/bench
[ -x "$BIN/bench-gio-echo" ] || BIN=$BUILD
case $WHICH in
  ours) PROG=$BIN/bench-kv-server ;;
  kv-plugin) PROG=$BUILD/examples/kv/kv-plugin ;;  # (Get "hello" is not found: empty store)
  gio-echo) PROG=$BIN/bench-gio-echo ;;
  soup-echo) PROG=$BIN/bench-soup-echo ;;
  *) echo "unknown server $WHICH" >&2; exit 2 ;;
esac
unset MALLOC_PERTURB_ MALLOC_CHECK_ G_SLICE G_DEBUG

OUT=$(mktemp -d /tmp/cp-profile.XXXXXX)
echo "output in $OUT" >&2
case $TOOL in
  perf)
    taskset -c 0 perf record -F 2000 -g -o "$OUT/perf.data" "$PROG" --listen 127.0.0.1:0 \
      >"$OUT/server.out" 2>"$OUT/server.err" &
    ;;
  callgrind)
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
      "$PROG" --listen 127.0.0.1:0 >"$OUT/server.out" 2>"$OUT/server.err" &
    ;;
  *) echo "unknown tool $TOOL" >&2; exit 2 ;;
esac
PID=$!
for _ in $(seq 200); do
  [ -s "$OUT/server.out" ] && break
  sleep 0.1
done
URL=$(head -n1 "$OUT/server.out")
[ -n "$URL" ] || { echo "server did not start: $(cat "$OUT/server.err")" >&2; kill "$PID"; exit 1; }
taskset -c 1 wrk -t1 -c"$CONNS" -d5s --latency -s "$SRC/connect-get.lua" "$URL" | grep -E 'Requests/sec|50%|99%'
# Stop the server (perf's child, or valgrind itself); it exits cleanly on SIGTERM.
child=$(pgrep -P "$PID" -f "$(basename "$PROG")" || true)
kill -TERM "${child:-$PID}"
wait "$PID"

case $TOOL in
  perf)
    perf report -i "$OUT/perf.data" --no-children --stdio --percent-limit 1.5 -g none 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -40
    echo "--- inclusive (children) ---"
    perf report -i "$OUT/perf.data" --children --stdio --percent-limit 5 -g none 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -40
    ;;
  callgrind)
    callgrind_annotate --inclusive=yes "$OUT/callgrind.out" 2>/dev/null | head -60
    echo "--- self ---"
    callgrind_annotate "$OUT/callgrind.out" 2>/dev/null | head -45
    ;;
esac
