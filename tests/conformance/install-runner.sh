#!/bin/sh
# Installs the Connect conformance runner (connectconformance) and fetches the
# conformance protos, both into a cache outside the source tree. Nothing of
# theirs is committed. Prints two lines on stdout:
#   runner=/path/to/connectconformance
#   protos=/path/to/module/proto
# Everything else goes to stderr. Exit status 0 on success, 1 when Go or the
# module proxy is unavailable (callers then skip the conformance suite).
#   install-runner.sh --cached-only   never downloads: succeeds only when
#                                     both are already in the cache (what
#                                     meson's configure step runs)
set -eu

cached_only=
[ "${1:-}" = --cached-only ] && cached_only=1

version="${CP_CONFORMANCE_VERSION:-v1.0.5}"
module=connectrpc.com/conformance
cache="${XDG_CACHE_HOME:-$HOME/.cache}/connectplugin/go"

if ! command -v go >/dev/null 2>&1; then
  echo "install-runner: go not found" >&2
  exit 1
fi

export GOPATH="$cache"
export GOBIN="$cache/bin-$version"
export GOMODCACHE="$cache/pkg/mod"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$GOBIN"

runner="$GOBIN/connectconformance"

# Runs "$@" and, if it fails (checksum database unreachable), once more
# without the checksum database for this module only.
with_sumdb_fallback () {
  if "$@" >&2; then
    return 0
  fi
  echo "install-runner: retrying with GONOSUMDB=connectrpc.com" >&2
  GONOSUMDB=connectrpc.com "$@" >&2
}

if [ -n "$cached_only" ]; then
  # The module cache alone: no proxy, no checksum database.
  export GOPROXY=off
  [ -x "$runner" ] || { echo "install-runner: $runner not installed" >&2; exit 1; }
fi

if [ ! -x "$runner" ]; then
  echo "install-runner: go install $module/cmd/connectconformance@$version into $GOBIN" >&2
  with_sumdb_fallback go install "$module/cmd/connectconformance@$version"
fi

# The module's download directory holds proto/connectrpc/conformance/v1/.
# (go mod download -json prints the Dir, and is a no-op once cached.)
json=$(go mod download -json "$module@$version" 2>/dev/null) ||
  json=$(GONOSUMDB=connectrpc.com go mod download -json "$module@$version")
dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p' | head -n 1)

if [ -z "$dir" ] || [ ! -f "$dir/proto/connectrpc/conformance/v1/service.proto" ]; then
  echo "install-runner: no conformance protos in '$dir'" >&2
  exit 1
fi

echo "runner=$runner"
echo "protos=$dir/proto"
