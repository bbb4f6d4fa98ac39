#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# build-kube-apiserver.sh: builds a real kube-apiserver from the Go module
# proxy into a cache outside the source tree, for the k8s test suite.
#
# A plain "go install k8s.io/kubernetes/cmd/kube-apiserver@vX" is refused
# because kubernetes' go.mod replaces its staging modules (k8s.io/api,
# apimachinery, client-go, ...) with local directories. A small wrapper
# module requires k8s.io/kubernetes and replaces each staging module, listed
# in kubernetes' own go.mod at v0.0.0, with its published v0.X.Y release.
#
# Prints the path of the binary on stdout; everything else goes to stderr.
# Exit status 0 on success, 1 when Go or the module proxy is unavailable.
#   build-kube-apiserver.sh --cached-only   never builds: succeeds only when
#                                           the binary is already cached
# The first build downloads ~490 MiB of modules and takes 5-7 minutes on two
# cores (about 2 GB of memory); later runs reuse the cached binary.
set -eu

version="${CP_KUBE_APISERVER_VERSION:-v1.34.4}"
staging="v0.${version#v1.}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/connectplugin"
dir="$cache/kube-apiserver-$version"
bin="$dir/kube-apiserver"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
if [ "${1:-}" = --cached-only ]; then
  echo "build-kube-apiserver: $bin not built" >&2
  exit 1
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build-kube-apiserver: go not found" >&2
  exit 1
fi

export GOPATH="$cache/go"
export GOMODCACHE="${CP_GOMODCACHE:-$cache/go/pkg/mod}"
export GOFLAGS="-modcacherw -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

mkdir -p "$dir"
work=$(mktemp -d "${TMPDIR:-/tmp}/cp-kube-apiserver.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "build-kube-apiserver: fetching k8s.io/kubernetes@$version" >&2
json=$(go mod download -json "k8s.io/kubernetes@$version")
src=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p' | head -n 1)
[ -f "$src/go.mod" ] || { echo "build-kube-apiserver: no go.mod in '$src'" >&2; exit 1; }

{
  echo "module connectplugin.test/kube-apiserver"
  echo
  sed -n 's/^go \(.*\)$/go \1/p' "$src/go.mod" | head -n 1
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "replace ("
  sed -n 's/^[[:space:]]*\(k8s\.io\/[a-z0-9-]*\) v0\.0\.0$/\t\1 => \1 '"$staging"'/p' "$src/go.mod"
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
echo "build-kube-apiserver: $(grep -c '=>' go.mod) staging modules replaced by $staging" >&2

pkg=k8s.io/component-base/version
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1"
ldflags="$ldflags -X $pkg.gitMinor=$(echo "$version" | cut -d. -f2)"
ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
echo "build-kube-apiserver: go build k8s.io/kubernetes/cmd/kube-apiserver (several minutes)" >&2
go build -mod=mod -trimpath -ldflags "$ldflags" -o "$work/kube-apiserver" \
  k8s.io/kubernetes/cmd/kube-apiserver >&2
mv "$work/kube-apiserver" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$bin"
