#!/usr/bin/env bash
# Builds the test guests (hostile and probe plugins) into target/test-guests/.
# The integration tests load them from there.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/test-guests"
mkdir -p "$out"

args=()
names=()
for dir in tests/guests/*/; do
  name="$(basename "$dir")"
  names+=("$name")
  args+=(-p "$name")
done
env -u CARGO_ENCODED_RUSTFLAGS -u RUSTFLAGS \
  cargo build --quiet --profile guest --target wasm32-wasip2 "${args[@]}"
for name in "${names[@]}"; do
  cp "$target_dir/wasm32-wasip2/guest/$name.wasm" "$out/$name.wasm"
done
# Not WebAssembly at all.
printf 'this is not a WebAssembly module\n' > "$out/not_wasm.wasm"
echo "built ${#names[@]} test guests into $out"
