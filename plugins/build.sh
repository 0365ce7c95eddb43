#!/usr/bin/env bash
# Builds every plugin in plugins/ into plugins/<name>.wasm, from source:
#   - folders with a Cargo.toml: Rust, `cargo build --target wasm32-wasip2`
#   - folders with a build.sh: that script (JavaScript via componentize-js,
#     Python via componentize-py), called as `build.sh OUTPUT.wasm`
# Usage: plugins/build.sh [NAME...]   (default: all)
# Toolchains: .ci/setup installs them (wasm target, componentize-js/-py).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

names=("$@")
if [ "${#names[@]}" -eq 0 ]; then
  for dir in plugins/*/; do
    names+=("$(basename "$dir")")
  done
fi

rust=()
other=()
for name in "${names[@]}"; do
  dir="plugins/$name"
  if [ -f "$dir/Cargo.toml" ]; then
    rust+=("$name")
  elif [ -f "$dir/build.sh" ]; then
    other+=("$name")
  elif [ "$name" != "node_modules" ]; then
    echo "plugins/build.sh: $dir has neither Cargo.toml nor build.sh" >&2
    exit 1
  fi
done

if [ "${#rust[@]}" -gt 0 ]; then
  args=()
  for name in "${rust[@]}"; do args+=(-p "$name"); done
  # The nested build must not inherit the host's rustflags (e.g. from
  # coverage or sanitizer runs).
  env -u CARGO_ENCODED_RUSTFLAGS -u RUSTFLAGS \
    cargo build --quiet --profile guest --target wasm32-wasip2 "${args[@]}"
  for name in "${rust[@]}"; do
    cp "$target_dir/wasm32-wasip2/guest/$name.wasm" "plugins/$name.wasm"
    echo "built plugins/$name.wasm ($(wc -c < "plugins/$name.wasm") bytes, rust)"
  done
fi

for name in "${other[@]}"; do
  out="$root/plugins/$name.wasm"
  # Skip the slow componentizers when the output is newer than every source.
  if [ -f "$out" ] && [ -z "$(find "plugins/$name" "wit" -newer "$out" -type f -print -quit)" ]; then
    echo "up to date plugins/$name.wasm"
    continue
  fi
  bash "plugins/$name/build.sh" "$out"
done
