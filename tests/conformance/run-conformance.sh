#!/bin/sh
# Runs the conformance runner against one of our programs and prints its
# closing counts. Exit status: the runner's (0 = every case passed).
#   run-conformance.sh RUNNER MODE CONFIG KNOWN_FAILING KNOWN_FLAKY PROGRAM
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
runner=$1 mode=$2 config=$3 known=$4 flaky=$5 program=$6

set -- --mode "$mode" --conf "$config"
if grep -q '^[^#[:space:]]' "$known" 2>/dev/null; then
  set -- "$@" --known-failing "@$known"
fi
if grep -q '^[^#[:space:]]' "$flaky" 2>/dev/null; then
  set -- "$@" --known-flaky "@$flaky"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$runner" "$@" -- "$program" >"$log" 2>&1
rc=$?
# The whole report on failure, only the counts on success.
if [ $rc -ne 0 ]; then
  cat "$log"
fi
counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
echo "conformance $mode mode: ${counts:-no counts (the runner failed)}"
grep -E '^\(Another [0-9]+ failed as expected' "$log"
exit $rc
