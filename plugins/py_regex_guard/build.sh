#!/usr/bin/env bash
# Builds the py_regex_guard guard component from app.py with componentize-py.
# Usage: plugins/py_regex_guard/build.sh OUTPUT.wasm
# Needs componentize-py on PATH (pip install componentize-py==0.25.1).
set -euo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUTPUT.wasm" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$(dirname "$here")")"
wit="$repo/wit/plugin@0.1.0"
out="$1"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

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
mkdir -p "$(dirname "$out")"
# The bindings (wit_world, componentize_py_types) are generated in memory at
# build time; nothing generated is written into the source tree. Build from a
# copy of the source so no __pycache__ lands in the repository either.
cp "$here/app.py" "$tmp/app.py"
(
  cd "$tmp"
  PYTHONDONTWRITEBYTECODE=1 "$componentize_py" \
    --wit-path "$wit" \
    --world guard-plugin \
    componentize app \
    --output "$out"
)

test -s "$out"
echo "built $out ($(wc -c < "$out") bytes)"
