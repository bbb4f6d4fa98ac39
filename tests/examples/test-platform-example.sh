#!/bin/sh
# test-platform-example.sh HOST-COMMAND...: runs a platform example host
# (C or Python) and checks what it printed: the secret read through the
# capability grant (secrets-reader reported healthy), and three app.Process
# calls whose route went app -> cache -> logger through the host's router.
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" >"$out" 2>&1
status=$?
cat "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$status" -eq 0 ] || fail "the host exited with status $status"
grep -q 'secrets-reader-[0-9a-f]\{4\} is healthy' "$out" || fail "secrets-reader never read its secret"
n=$(grep -c 'route: app-plugin-[0-9a-f]\{4\} -> cache-plugin-[0-9a-f]\{4\}' "$out")
[ "$n" -eq 3 ] || fail "expected 3 app -> cache hops, saw $n"
n=$(grep -c 'route: cache-plugin-[0-9a-f]\{4\} -> logger-plugin-[0-9a-f]\{4\}' "$out")
[ "$n" -eq 3 ] || fail "expected 3 cache -> logger hops, saw $n"
grep -q 'every call went through' "$out" || fail "no final line"
echo "ok: capability grant used, 3 routed calls app -> cache -> logger"
