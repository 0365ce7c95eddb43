#!/usr/bin/env bash
# Builds the js_collect reducer component from collect.js with componentize-js.
# Usage: plugins/js_collect/build.sh OUTPUT.wasm
# Needs the pinned tool installed first: npm ci --prefix plugins
set -euo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUTPUT.wasm" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugins="$(dirname "$here")"
repo="$(dirname "$plugins")"
wit="$repo/wit/plugin@0.1.0"
tool="$plugins/node_modules/.bin/componentize-js"
out="$1"

if [ ! -x "$tool" ]; then
  echo "error: $tool not found; run: npm ci --prefix plugins" >&2
  exit 1
fi


mkdir -p "$(dirname "$out")"
# Disable every optional WASI feature: the component then imports only the
# plugin's `host` interface (no wasi:http, clocks, random or stdio).
"$tool" "$here/collect.js" \
  --wit "$wit" \
  --world-name reducer-plugin \
  --disable stdio random clocks http fetch-event \
  --out "$out"

test -s "$out"
echo "built $out ($(wc -c < "$out") bytes)"
