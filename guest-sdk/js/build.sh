#!/usr/bin/env bash
# Builds a JavaScript plugin (a folder of .js modules that register entries
# with ./sdk.js) into a component with componentize-js.
# Usage: guest-sdk/js/build.sh SRC_DIR OUTPUT.wasm
#
# The folder's modules are copied beside sdk.js into a temporary folder with
# an entry module that imports each of them and re-exports the SDK's
# interface objects for the WIT world `plugin`. Every optional WASI feature
# is disabled, so the component imports only `workflow:plugin/host` — except
# `http` (and the clocks it needs) for a plugin whose modules call `fetch(`.
# Needs componentize-js: npm ci --prefix plugins (or bash .ci/setup).
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
tool="${COMPONENTIZE_JS:-$repo/plugins/node_modules/.bin/componentize-js}"
if [ ! -x "$tool" ]; then
  echo "error: $tool not found; run: npm ci --prefix $repo/plugins (or bash .ci/setup)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$src"/*.js "$tmp/"
cp "$sdk/sdk.js" "$tmp/sdk.js"
{
  for f in "$src"/*.js; do
    [ "$(basename "$f")" = sdk.js ] || echo "import './$(basename "$f")';"
  done
  echo "export { describe, guard_ as guard, inputMapper_ as inputMapper, reducer_ as reducer, tool_ as tool, guardrail_ as guardrail } from './sdk.js';"
} > "$tmp/__entry.js"
mkdir -p "$(dirname "$out")"
# A plugin that calls `fetch` keeps wasi:http (the host still sends only what
# the spec grants a tool: plugins.NAME.allowed_hosts); the others import none.
disabled=(stdio random clocks http fetch-event)
if grep -q 'fetch(' "$src"/*.js; then
  disabled=(stdio random fetch-event)
fi
"$tool" "$tmp/__entry.js" --wit "$wit" --world-name plugin \
  --disable "${disabled[@]}" --out "$out" > "$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
test -s "$out"
echo "built $out ($(wc -c < "$out") bytes, js)"
