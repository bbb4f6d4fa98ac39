#!/bin/sh
# build.sh SRCROOT OUTDIR: builds the Go interop peers of tests/interop/go.
#
# Copies this module to OUTDIR/mod, generates the Go code for our protos
# (proto/connectplugin/v1, proto/connectplugin/health/v1,
# examples/kv/kv.proto, examples/platform/*.proto) into OUTDIR/mod/gen with
# protoc-gen-go and protoc-gen-connect-go built from the versions pinned in
# go.mod, and builds every command of cmd/ into OUTDIR (the protoc plugins
# go to OUTDIR/tools). Nothing is written to the source tree: module cache
# $GOMODCACHE (default $HOME/go/pkg/mod), build cache $GOCACHE (default
# $HOME/.cache/go-build). Does nothing when the inputs (and the Go
# version) are those of the last build.
#
# Exit 77 (skip) when Go or protoc is missing.
set -eu
src=$(cd "$(dirname "$0")" && pwd)
root=$1
out=$2

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  PATH=$PATH:/usr/local/go/bin
fi
if ! command -v go >/dev/null 2>&1; then
  echo "SKIP: Go (>= 1.26) is not installed: the interop-go tests need it (the library does not)" >&2
  exit 77
fi
# go.mod says go 1.26.0 (google.golang.org/grpc needs it); GOTOOLCHAIN=local
# below: an older Go is a skip, not a download.
case $(go env GOVERSION) in
  go1.2[0-5]|go1.2[0-5].*|go1.1[0-9]*)
    echo "SKIP: $(go env GOVERSION) is older than the Go 1.26 the interop-go peers need" >&2
    exit 77 ;;
esac
if ! command -v protoc >/dev/null 2>&1; then
  echo "SKIP: protoc is not installed" >&2
  exit 77
fi


cmds=$(cd "$src/cmd" && ls)

mkdir -p "$out"
# One build at a time (meson runs tests in parallel).
exec 9>"$out/.lock"
flock 9 2>/dev/null || true

# Up to date?
stamp=$( (go version; protoc --version
          cd "$root" && cat proto/connectplugin/v1/*.proto proto/connectplugin/health/v1/*.proto \
                            examples/kv/kv.proto examples/platform/*.proto
          cd "$src" && echo $cmds && cat go.mod go.sum cpgo/*.go cmd/*/*.go build.sh) | sha256sum | cut -d' ' -f1)
built=yes
for p in $cmds; do
  [ -x "$out/$p" ] || built=no
done
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] && [ $built = yes ]; then
  exit 0
fi
rm -f "$out/.stamp"

mod=$out/mod
rm -rf "$mod.new"
mkdir -p "$mod.new"
cp "$src/go.mod" "$src/go.sum" "$mod.new/"
cp -r "$src/cpgo" "$src/cmd" "$mod.new/"
mkdir -p "$mod.new/gen" "$out/tools"

export GOFLAGS=-mod=readonly
export GOTOOLCHAIN=local
(cd "$mod.new" && go build -o "$out/tools/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go \
   && go build -o "$out/tools/protoc-gen-connect-go" connectrpc.com/connect/cmd/protoc-gen-connect-go)

gen() { # proto_path package-dir files...
  pp=$1; pkg=$2; shift 2
  m=""
  for f in "$@"; do
    m="$m --go_opt=M$f=cpinterop/gen/$pkg;$pkg --connect-go_opt=M$f=cpinterop/gen/$pkg;$pkg"
  done
  # shellcheck disable=SC2086
  protoc --plugin=protoc-gen-go="$out/tools/protoc-gen-go" \
         --plugin=protoc-gen-connect-go="$out/tools/protoc-gen-connect-go" \
         --proto_path="$pp" \
         --go_out="$mod.new" --go_opt=module=cpinterop \
         --connect-go_out="$mod.new" --connect-go_opt=module=cpinterop \
         $m "$@"
}
gen "$root/proto/connectplugin/v1" cpv1 broker.proto control.proto handshake.proto \
    identity.proto lifecycle.proto registry.proto
gen "$root/proto/connectplugin/health/v1" healthv1 health.proto
gen "$root/examples/kv" kvv1 kv.proto
for p in logger cache app secrets; do
  gen "$root/examples/platform" "${p}v1" "$p.proto"
done

rm -rf "$mod"
mv "$mod.new" "$mod"
cd "$mod"
go vet ./cmd/... ./cpgo/...
for p in $cmds; do
  go build -trimpath -o "$out/$p" "./cmd/$p"
done
echo "$stamp" >"$out/.stamp"
