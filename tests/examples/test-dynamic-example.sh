#!/bin/sh
# test-dynamic-example.sh HOST-COMMAND...: runs a dynamic-plugins example
# host (dynamic-host in C, or dynamic_host.py) and checks what it printed:
# the logger and a cache added by the host, the cache replaced, a second
# cache added and removed, each while calls ran; calls in each of the four
# phases, the second cache serving some, the old cache's runtime id
# leading to its replacement, the GListModel without the plugins that
# left, an empty list at the end, the impact each removal reported
# (plugin-removing), every plugin process exiting with 0,
# and "dynamic: N calls, 0 failed" with exit status 0.
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" >"$out" 2>&1
status=$?
cat "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
id='[0-9a-f]\{4\}'

[ "$status" -eq 0 ] || fail "the host exited with status $status"

grep -q "^add logger-plugin: logger-plugin-$id routable after [0-9.]* ms" "$out" || fail "the logger was not added"
n=$(grep -c "^add cache-plugin: cache-plugin-$id routable after [0-9.]* ms" "$out")
[ "$n" -eq 2 ] || fail "expected 2 caches added, saw $n"
old=$(sed -n "s/^replace \(cache-plugin-$id\): the new instance cache-plugin-$id serves every new call after [0-9.]* ms.*/\1/p" "$out")
[ -n "$old" ] || fail "no replace step"
new=$(sed -n "s/^replace cache-plugin-$id: the new instance \(cache-plugin-$id\) serves.*/\1/p" "$out")
removed=$(sed -n "s/^remove \(cache-plugin-$id\): out of the platform after [0-9.]* ms.*/\1/p" "$out")
[ -n "$removed" ] || fail "no remove step"

# Calls in every phase, none failed.
for phase in 1 2 3 4; do
  line=$(grep "^phase $phase (" "$out") || fail "no phase $phase"
  calls=$(echo "$line" | sed -n 's/.*: \([0-9]*\) calls, \([0-9]*\) failed.*/\1/p')
  failed=$(echo "$line" | sed -n 's/.*: \([0-9]*\) calls, \([0-9]*\) failed.*/\2/p')
  [ "${calls:-0}" -gt 0 ] || fail "phase $phase: no calls"
  [ "$failed" = 0 ] || fail "phase $phase: $failed calls failed"
done
# Phase 2: the old instance's runtime id led to its replacement.
n=$(sed -n "s/^  \([0-9]*\) calls addressed to $old were served by its replacement/\1/p" "$out")
[ "${n:-0}" -gt 0 ] || fail "no call addressed to $old reached $new"
# Phase 3: both caches served.
grep "^phase 3 (" "$out" | grep -q "$removed [1-9]" || fail "the second cache served no call"
grep "^phase 3 (" "$out" | grep -q "$new [1-9]" || fail "the replacement served no call in phase 3"

# The host's list after each step: the replaced and the removed cache left it.
grep -q "^  signal plugin-removed: $old" "$out" || fail "no plugin-removed for $old"
grep -q "^  signal plugin-removed: $removed" "$out" || fail "no plugin-removed for $removed"
# Its impact check: the other cache still provides "cache", nothing stops.
grep -q "^  signal plugin-removing: $removed (stops: none; services left without a provider: none)" "$out" ||
  fail "no plugin-removing with an empty impact for $removed"
# The logger, removed at the end, leaves "logger" without a provider.
grep -q "^  signal plugin-removing: logger-plugin-$id (stops: none; services left without a provider: logger)" "$out" ||
  fail "no plugin-removing naming the logger service"
after_replace=$(sed -n "/^phase 2 (/{x;p;q;};h" "$out")
case "$after_replace" in
  "  plugins ("*"$new"*) ;;
  *) fail "the list after the replacement does not show $new: $after_replace" ;;
esac
case "$after_replace" in *"$old"*) fail "$old is still listed after its replacement" ;; esac
after_remove=$(sed -n "/^remove $removed:/{n;p;q;}" "$out")
case "$after_remove" in
  "  plugins ("*"$new"*) ;;
  *) fail "the list after the removal does not show $new: $after_remove" ;;
esac
case "$after_remove" in *"$removed"*) fail "$removed is still listed after its removal" ;; esac

# At the end the host removed everything it listed.
[ "$(grep '^  plugins (' "$out" | tail -n 1)" = "  plugins (0):" ] || fail "plugins left at the end"
n=$(grep -c '^  process [a-z-]* exited (status 0)' "$out")
[ "$n" -eq 4 ] || fail "expected 4 plugin processes to exit with 0, saw $n"
total=$(sed -n 's/^dynamic: \([0-9]*\) calls, 0 failed.*/\1/p' "$out")
[ "${total:-0}" -gt 0 ] || fail "no final line with 0 failed"
echo "ok: added, replaced, added and removed under load; $total calls, 0 failed"
