#!/bin/sh
# run.sh SRCROOT OUTDIR PROGRAM [ARGS...]: builds the Go peers into OUTDIR
# (build.sh; exit 77 = skip when Go is missing) and runs PROGRAM.
set -e
here=$(dirname "$0")
root=$1
out=$2
shift 2
"$here/build.sh" "$root" "$out" || exit $?
exec "$@"
