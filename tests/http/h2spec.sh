#!/bin/sh
# h2spec.sh SERVER [tls]: runs h2spec (RFC 7540/9113 and HPACK conformance)
# against SERVER (a binary that takes "--listen 127.0.0.1:0" and prints its
# URL as its first stdout line): over h2c with prior knowledge, or with
# "tls" over TLS with ALPN h2 (SERVER then takes --tls-cert and --tls-key;
# a self-signed certificate is made with openssl for the run).
#
# h2spec is built from the Go module proxy into
# ${XDG_CACHE_HOME:-$HOME/.cache}/connectplugin/go/bin-h2spec-VERSION and
# reused. Exit 77 (skip) when Go is missing or h2spec cannot be built.
# Fails on any failing h2spec case other than the known one below.
set -eu

server=$1
mode=${2:-h2c}
version="${CP_H2SPEC_VERSION:-v2.2.1+incompatible}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/connectplugin/go"
bin="$cache/bin-h2spec-$version/h2spec"

# Known, over h2c only, with its reason (docs/engine.md, "Server HTTP/2"):
# "Sends invalid connection preface": a plaintext port serves HTTP/1.1 too,
# and h2spec's invalid preface is a malformed HTTP/1.1 request, answered
# "400 Bad Request" before the connection closes (as Go's h2c handler does).
# Over TLS, ALPN says HTTP/2 before any byte: every case must pass.
known=
[ "$mode" = tls ] || known='Sends invalid connection preface'

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  PATH=$PATH:/usr/local/go/bin
fi
if [ ! -x "$bin" ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "SKIP: Go is not installed: h2spec cannot be built" >&2
    exit 77
  fi
  mkdir -p "$(dirname "$bin")"
  if ! GOPATH="$cache" GOMODCACHE="$cache/pkg/mod" GOBIN="$(dirname "$bin")" \
       GOFLAGS="-modcacherw" GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
       go install "github.com/summerwind/h2spec/cmd/h2spec@$version" >&2; then
    echo "SKIP: h2spec could not be built (no module proxy?)" >&2
    exit 77
  fi
fi

tmp=$(mktemp -d)
pid=
cleanup () {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

set -- --listen 127.0.0.1:0
tls=
if [ "$mode" = tls ]; then
  command -v openssl >/dev/null || { echo "SKIP: openssl is not installed" >&2; exit 77; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  set -- "$@" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
  tls="-t -k"
fi
"$server" "$@" >"$tmp/server.out" 2>"$tmp/server.err" &
pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/server.out" ] && break
  sleep 0.05
done
url=$(head -n 1 "$tmp/server.out")
port=${url##*:}
[ -n "$port" ] || { echo "the server did not start: $(cat "$tmp/server.err")" >&2; exit 1; }

# shellcheck disable=SC2086
"$bin" -h 127.0.0.1 -p "$port" $tls --timeout 2 >"$tmp/h2spec.txt" 2>&1 || true
tail -n 1 "$tmp/h2spec.txt"
grep -q 'tests, ' "$tmp/h2spec.txt" || { cat "$tmp/h2spec.txt"; exit 1; }

# The failures summary lists "× N: description" once per failing case.
failed=$(sed -n '/^Failures:/,$p' "$tmp/h2spec.txt" | sed -n 's/^ *× [0-9]*: //p' | sort -u)
if [ -n "$known" ]; then
  unexpected=$(printf '%s\n' "$failed" | grep -vxF "$known" | grep . || true)
else
  unexpected=$failed
fi
if [ -n "$unexpected" ]; then
  echo "unexpected h2spec failures:" >&2
  printf '  %s\n' "$unexpected" >&2
  sed -n '/^Failures:/,$p' "$tmp/h2spec.txt" >&2
  exit 1
fi
echo "h2spec: no failure beyond the known ones"
