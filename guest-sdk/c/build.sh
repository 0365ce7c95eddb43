#!/usr/bin/env bash
# Builds a C plugin (a folder of .c files using sdk.h) into a component.
# Usage: guest-sdk/c/build.sh SRC_DIR OUTPUT.wasm
#
# Steps (docs/PLUGINS.md, "C"): bindings of the WIT world `plugin` from
# `componentize bindings c`; clang for wasm32-wasi (Debian's wasi-libc,
# preview 1) as a reactor, linked with the bindings' type object and
# `--strip-debug` (`--strip-all` would drop the WIT section); then
# `componentize new`, which adapts WASI preview 1 with the reactor adapter.
# Needs: clang, lld, wasi-libc, libclang-rt-14-dev-wasm32 (apt) and the
# componentize tool (bash .ci/setup).
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 SRC_DIR OUTPUT.wasm" >&2
  exit 2
fi
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$(dirname "$sdk")")"
src="$(cd "$1" && pwd)"
out="$2"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
wit="$repo/wit/plugin@0.1.0"
source "$repo/guest-sdk/tools.sh"
cc="${CC_WASM:-clang}"
command -v "$cc" > /dev/null || { echo "error: $cc not found; run: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 (or bash .ci/setup)" >&2; exit 1; }
componentize="$(componentize_tool)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$componentize" bindings c "$wit" plugin "$tmp"
"$cc" --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -std=c11 -D_GNU_SOURCE \
  -Wall -Wextra -Wno-unused-parameter \
  -I "$sdk" -I "$tmp" \
  "$src"/*.c "$sdk/sdk.c" "$tmp/plugin.c" "$tmp/plugin_component_type.o" \
  -Wl,--strip-debug -o "$tmp/core.wasm"
mkdir -p "$(dirname "$out")"
"$componentize" new "$wit" plugin "$tmp/core.wasm" "$out"
echo "built $out ($(wc -c < "$out") bytes, c)"
