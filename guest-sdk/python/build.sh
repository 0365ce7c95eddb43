#!/usr/bin/env bash
# Builds a Python plugin (a folder of .py modules that register entries with
# plugin_sdk) into a component with componentize-py.
# Usage: guest-sdk/python/build.sh SRC_DIR OUTPUT.wasm
#
# The folder's modules are copied beside plugin_sdk.py into a temporary
# folder with an entry module that imports each of them and re-exports the
# SDK's classes for the WIT world `plugin`. The bindings are generated at
# build time and never written into the source tree.
# Needs componentize-py on PATH (pip install componentize-py==0.25.1, or bash .ci/setup).
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

# The script may not be on PATH (e.g. no pyenv shim yet): look beside python3.
componentize_py="$(command -v componentize-py || true)"
if [ -z "$componentize_py" ]; then
  scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  [ -x "$scripts/componentize-py" ] && componentize_py="$scripts/componentize-py"
fi
if [ -z "$componentize_py" ]; then
  echo "error: componentize-py not found; run: pip install componentize-py==0.25.1 (or bash .ci/setup)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$src"/*.py "$tmp/"
cp "$sdk/plugin_sdk.py" "$tmp/plugin_sdk.py"
{
  for f in "$src"/*.py; do
    m="$(basename "$f" .py)"
    [ "$m" = plugin_sdk ] || echo "import $m  # noqa: F401"
  done
  echo "from plugin_sdk import Describe, Guard, InputMapper, Reducer, Tool, Guardrail  # noqa: F401"
} > "$tmp/wp_main.py"
mkdir -p "$(dirname "$out")"
(
  cd "$tmp"
  PYTHONDONTWRITEBYTECODE=1 "$componentize_py" --wit-path "$wit" --world plugin \
    componentize wp_main --output "$out" > "$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
)
test -s "$out"
echo "built $out ($(wc -c < "$out") bytes, python)"
