# bench-lib.sh: shell functions shared by the benchmark scripts
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Sourced (bash) by run-bench.sh, run-bench-h2.sh and run-bench-protocols.sh,
# after they set:
#   TMP         a private temporary directory (the script removes it)
#   SERVER_CPU  CPU the servers are pinned to (taskset -c); empty: unpinned
#   LOAD_CPU    CPU wrk and h2load are pinned to; empty: unpinned
#   DURATION    wrk -d and h2load -D (e.g. 4s)
#   ROOT        the source tree
# and `round` (the current round number, for the progress lines).
# Results go to the associative arrays RPS, P50 and P99 (best round kept),
# keyed "NAME,CONNS" (wrk) or "NAME,h2" (h2load); failures to FAILURES.
#
# Nothing here fails on a target (verdict () only words one): a benchmark
# that could not run, or got a wrong answer, is recorded with fail () and
# the caller exits non-zero.

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SERVER_PID=
SERVER_URL=
FAILURES=()
declare -A RPS P50 P99

fail () {
  FAILURES+=("$*")
  echo "FAILED: $*" >&2
}

# pinned CPU COMMAND...: runs COMMAND pinned to CPU, or unpinned if CPU is empty.
pinned () {
  local cpu=$1; shift
  if [ -n "$cpu" ]; then
    taskset -c "$cpu" "$@"
  else
    "$@"
  fi
}

# start_server NAME PROGRAM ARGS...: starts a server printing its URL as the
# first stdout line, on SERVER_CPU; sets SERVER_PID and SERVER_URL.
start_server () {
  local name=$1 pin=(); shift
  SERVER_URL=
  # A round before left its URL there: gone before the server starts
  # (the redirection below truncates only once the child runs).
  rm -f "$TMP/$name.out" "$TMP/$name.err"
  # Not through pinned (): SERVER_PID must be the server, not a subshell.
  [ -n "$SERVER_CPU" ] && pin=(taskset -c "$SERVER_CPU")
  "${pin[@]}" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    if [ -s "$TMP/$name.out" ]; then
      SERVER_URL=$(head -n1 "$TMP/$name.out")
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  fail "$name did not start: $(tail -n3 "$TMP/$name.err")"
  kill -KILL "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
  return 1
}

# stop_server NAME: SIGTERM, then checks that the server exited 0.
stop_server () {
  local name=$1 status
  [ -z "$SERVER_PID" ] && return
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID"; status=$?
    fail "$name died during the benchmark (status $status): $(tail -n3 "$TMP/$name.err")"
    SERVER_PID=
    return
  fi
  # The servers quit their main loop on SIGTERM and exit 0 (so sanitizer
  # builds get to report leaks).
  kill -TERM "$SERVER_PID"
  for _ in $(seq 50); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    fail "$name did not exit on SIGTERM"
  fi
  wait "$SERVER_PID" 2>/dev/null; status=$?
  if [ "$status" != 0 ] && [ "$status" != 137 ]; then
    fail "$name exited with status $status: $(tail -n5 "$TMP/$name.err")"
  fi
  SERVER_PID=
}

# One binary Connect unary request (HTTP/1.1); checks the status and the body.
# check_answer NAME URL EXPECTED_HEX
check_answer () {
  local name=$1 url=$2 expected=$3 got status
  printf '\x0a\x05hello' >"$TMP/request.bin"
  status=$(curl -s -o "$TMP/answer.bin" -w '%{http_code}' --max-time 5 \
    -H 'Content-Type: application/proto' -H 'Connect-Protocol-Version: 1' \
    --data-binary @"$TMP/request.bin" "$url/kv.v1.KVService/Get")
  got=$(od -An -tx1 -v "$TMP/answer.bin" | tr -d ' \n')
  if [ "$status" != 200 ] || [ "$got" != "$expected" ]; then
    fail "$name answered HTTP $status, body '$got' (expected 200, '$expected')"
    return 1
  fi
}

# A KV store that starts empty: PutRequest{key: "hello", value: "world"}.
# put_hello NAME URL
put_hello () {
  local name=$1 url=$2 status
  printf '\x0a\x05hello\x12\x05world' >"$TMP/put.bin"
  status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
    -H 'Content-Type: application/proto' -H 'Connect-Protocol-Version: 1' \
    --data-binary @"$TMP/put.bin" "$url/kv.v1.KVService/Put")
  if [ "$status" != 200 ]; then
    fail "$name: Put answered HTTP $status"
    return 1
  fi
}

# wrk latency ("116.00us", "1.06ms", "2.00s") → µs
to_us () {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) u = n; else if (v ~ /ms$/) u = n * 1000;
    else if (v ~ /s$/) u = n * 1000000; else u = n;
    printf "%.0f", u }'
}

# keep_best KEY RPS P50_US P99_US: records a round if it is the best so far.
keep_best () {
  if [ "$2" -gt "${RPS[$1]:-0}" ]; then
    RPS[$1]=$2
    P50[$1]=$3
    P99[$1]=$4
  fi
}

# run_wrk NAME CONNS URL SCRIPT: wrk -t${WRK_THREADS:-1} on LOAD_CPU with a
# Lua script of this directory; keeps the best round in RPS[NAME,CONNS].
run_wrk () {
  local name=$1 conns=$2 url=$3 script=$4 out rps p50 p99 bad errs
  out=$(pinned "$LOAD_CPU" wrk -t"${WRK_THREADS:-1}" -c"$conns" -d"$DURATION" --latency \
        -s "$BENCH_LIB_DIR/$script" "$url" 2>&1)
  echo "$out" >"$TMP/wrk-$name-$conns.txt"
  rps=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
  p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
  p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
  bad=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ { print $NF }')
  errs=$(echo "$out" | awk '/Socket errors:/ { print }')
  if [ -z "$rps" ]; then
    fail "wrk $name c=$conns: $(echo "$out" | tail -n2)"
    rps=0
  fi
  [ -n "$bad" ] && fail "wrk $name c=$conns: $bad non-2xx responses"
  [ -n "$errs" ] && echo "note: wrk $name c=$conns: $errs" >&2
  echo "  round ${round:-1}: $name c=$conns: $rps req/s, p50 ${p50:-?}, p99 ${p99:-?}" >&2
  keep_best "$name,$conns" "$rps" "$(to_us "${p50:-0}")" "$(to_us "${p99:-0}")"
}

# run_h2load NAME URL BODY_FILE BODY_BYTES [-H HEADER]...: h2load on
# LOAD_CPU, 16 connections × 10 concurrent streams for DURATION, posting
# BODY_FILE to URL. Every request must succeed with a 2xx and every answer
# carry BODY_BYTES of DATA (so an error answered with HTTP 200, as gRPC
# does in its trailers, is caught). No --warm-up-time: h2load's byte and
# status counts would then include the warm-up's answers, "succeeded" not.
# Keeps the best round in RPS[NAME,h2] (P50/P99: the mean and max request
# time; h2load reports no percentiles).
run_h2load () {
  local name=$1 url=$2 body=$3 bytes=$4 out rps ok failed errored codes2xx others data mean max
  shift 4
  out=$(pinned "$LOAD_CPU" h2load -c 16 -m 10 -D "${DURATION%s}" \
        -d "$body" "$@" "$url" 2>&1)
  echo "$out" >"$TMP/h2load-$name.txt"
  rps=$(echo "$out" | sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' | awk '{ printf "%.0f", $1 }')
  ok=$(echo "$out" | sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p')
  failed=$(echo "$out" | sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p')
  errored=$(echo "$out" | sed -n 's/^requests: .* \([0-9]*\) errored.*/\1/p')
  codes2xx=$(echo "$out" | sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p')
  others=$(echo "$out" | sed -n 's/^status codes: [0-9]* 2xx, \([0-9]*\) 3xx, \([0-9]*\) 4xx, \([0-9]*\) 5xx.*/\1 \2 \3/p')
  data=$(echo "$out" | sed -n 's/^traffic: .* (\([0-9]*\)) data.*/\1/p')
  mean=$(echo "$out" | awk '$1 == "time" && $2 == "for" && $3 == "request:" { print $6 }')
  max=$(echo "$out" | awk '$1 == "time" && $2 == "for" && $3 == "request:" { print $5 }')
  if [ -z "$rps" ] || [ -z "$ok" ] || [ "${ok:-0}" -eq 0 ]; then
    fail "h2load $name: $(echo "$out" | tail -n3 | tr '\n' ' ')"
    return 1
  fi
  # Streams still open when the time is up are neither succeeded nor
  # failed, but may have their status (and DATA) counted: at most 16 × 10.
  if [ "${failed:-1}" != 0 ] || [ "${errored:-1}" != 0 ] || [ "$others" != "0 0 0" ] ||
     [ "${codes2xx:-0}" -lt "$ok" ] || [ "$codes2xx" -gt $((ok + 160)) ]; then
    fail "h2load $name: $ok succeeded, $failed failed, $errored errored; ${codes2xx:-?} answered 2xx, ${others:-?} 3xx 4xx 5xx"
    return 1
  fi
  # Each answer carries BODY_BYTES (h2load counts DATA payload bytes).
  if ! awk -v d="$data" -v n="$ok" -v b="$bytes" 'BEGIN { exit !(d >= n * b && d <= (n + 160) * b) }'; then
    fail "h2load $name: $data bytes of DATA for $ok answers, expected $bytes each (an error answer?)"
    return 1
  fi
  echo "  round ${round:-1}: $name h2load c=16 m=10: $rps req/s, mean ${mean:-?}, max ${max:-?}" >&2
  keep_best "$name,h2" "$rps" "$(to_us "${mean:-0}")" "$(to_us "${max:-0}")"
}

ratio () {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a" }'
}

# field KEY "RESULT k=v ...": the value of k in a RESULT line
field () {
  echo "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'
}

# build_go_peers BUILD: builds the Go peers (tests/interop/go/build.sh) into
# BUILD/tests/interop/go/peers = GO_PEERS. Sets GO_VERSION, or GO_SKIP
# (why the Go rows are skipped) when Go or protoc is missing or the build
# failed (a failure is also recorded).
build_go_peers () {
  GO_PEERS=$1/tests/interop/go/peers
  GO_SKIP=
  GO_VERSION=
  "$ROOT/tests/interop/go/build.sh" "$ROOT" "$GO_PEERS" >"$TMP/go-build.txt" 2>&1
  case $? in
    0)  GO_VERSION=$( (PATH=$PATH:/usr/local/go/bin; go version) 2>/dev/null | awk '{ print $3 }') ;;
    77) GO_SKIP=$(grep -m1 SKIP "$TMP/go-build.txt" || echo "SKIP: Go is not installed") ;;
    *)  fail "building the Go peers (tests/interop/go/build.sh): $(tail -n3 "$TMP/go-build.txt")"
        GO_SKIP="SKIP: the Go peers did not build" ;;
  esac
  [ -n "$GO_SKIP" ] && echo "$GO_SKIP; the Go rows are skipped" >&2
  return 0
}

# verdict RATIO min:T|max:T: "met", or by how much the target is missed.
verdict () {
  awk -v r="$1" -v k="${2%%:*}" -v t="${2#*:}" 'BEGIN {
    if (r == "n/a" || r == "") { print "n/a"; exit }
    if (k == "min") { if (r + 0 >= t + 0) print "met"; else printf "missed by %.0f%%\n", (1 - r / t) * 100 }
    else            { if (r + 0 < t + 0) print "met"; else printf "missed by %.0f%%\n", (r / t - 1) * 100 } }'
}
