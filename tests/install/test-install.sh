#!/bin/bash
# test-install.sh BUILD_DIR [--subproject]: installs the build into a
# staging directory and builds a project of one's own against it
# (consumer/): C under -Wall -Wextra -Werror, its own .proto and Vala, with
# nothing but pkg-config pointing at the staged prefix (no XDG_DATA_DIRS, no
# include paths by hand). With --subproject, the same project with this
# source tree as subprojects/connectplugin instead (a build of the library
# of its own, without tests or examples; no network).
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT

if [ "${2:-}" = --subproject ]; then
  export PYTHONPATH=$ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}
  mkdir -p "$TMP/project/subprojects"
  cp "$HERE"/consumer/* "$TMP/project/"
  ln -s "$ROOT" "$TMP/project/subprojects/connectplugin"
  meson setup "$TMP/build" "$TMP/project" -Dconnectplugin:docs=false >"$TMP/setup.log" 2>&1 ||
    { cat "$TMP/setup.log"; exit 1; }
  grep -E 'Subproject connectplugin|Run-time dependency connectplugin' "$TMP/setup.log" || true
  meson compile -C "$TMP/build" >"$TMP/compile.log" 2>&1 || { tail -n 40 "$TMP/compile.log"; exit 1; }
  # Only the library, its tools and bindings were built.
  if [ -e "$TMP/build/subprojects/connectplugin/tests" ] || [ -e "$TMP/build/subprojects/connectplugin/examples" ]; then
    echo "the subproject built its tests or examples"; exit 1
  fi
  meson test -C "$TMP/build" --print-errorlogs --verbose
  exit
fi

meson install -C "$BUILD" --no-rebuild --destdir "$TMP/dest" --quiet >/dev/null
PREFIX=$(meson introspect --buildoptions "$BUILD" |
  /usr/bin/python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
STAGE=$TMP/dest$PREFIX
PC=$(find "$STAGE" -name connectplugin-1.0.pc)
[ -n "$PC" ] || { echo "no connectplugin-1.0.pc installed"; exit 1; }
# The staged tree stands where it was meant to be installed.
sed -i "s|^prefix=.*|prefix=$STAGE|" "$PC"

echo "# installed .pc:"; sed 's/^/#   /' "$PC"
export PKG_CONFIG_PATH=$(dirname "$PC")
export PATH=$STAGE/bin:$PATH
# The Python overrides and connectplugin package, where meson installed them.
OVERRIDES=$(find "$STAGE" -path '*/gi/overrides/ConnectPlugin.py' | head -n 1)
[ -n "$OVERRIDES" ] && export PYTHONPATH=$(dirname "$(dirname "$(dirname "$OVERRIDES")")")${PYTHONPATH:+:$PYTHONPATH}
export LD_LIBRARY_PATH=$STAGE/$(pkg-config --variable=libdir connectplugin-1.0 | sed "s|^$STAGE/||")
for v in girdir vapidir typelibdir; do
  d=$(pkg-config --variable=$v connectplugin-1.0)
  [ -d "$d" ] || { echo "pkg-config $v=$d: no such directory"; exit 1; }
done
[ -f "$(pkg-config --variable=girdir connectplugin-1.0)/ConnectPlugin-1.0.gir" ] || { echo "no GIR in girdir"; exit 1; }
if command -v valac >/dev/null; then
  VAPIDIR=$(pkg-config --variable=vapidir connectplugin-1.0)
  for f in connectplugin-1.0.vapi connectplugin-1.0.deps; do
    [ -f "$VAPIDIR/$f" ] || { echo "no $f in vapidir $VAPIDIR"; exit 1; }
  done
fi
if pkg-config --print-requires connectplugin-1.0 | grep -q json-glib; then
  echo "json-glib-1.0 is in Requires: no public header uses it"; exit 1
fi

meson setup "$TMP/consumer" "$HERE/consumer" >"$TMP/setup.log" 2>&1 || { cat "$TMP/setup.log"; exit 1; }
meson compile -C "$TMP/consumer" >"$TMP/compile.log" 2>&1 || { cat "$TMP/compile.log"; exit 1; }
meson test -C "$TMP/consumer" --print-errorlogs --verbose
