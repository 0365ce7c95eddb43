#!/usr/bin/env bash
# Builds every plugin in plugins/ into plugins/<name>.wasm, from source.
# The language of a folder is what it holds:
#   - build.sh        that script, called as `build.sh OUTPUT.wasm`
#   - Cargo.toml      Rust: `cargo build --target wasm32-wasip2`
#   - *.go / *.c / *.js / *.py
#                     Go, C, JavaScript, Python: guest-sdk/<lang>/build.sh
#                     SRC_DIR OUTPUT.wasm (the language's SDK and toolchain)
# Usage: plugins/build.sh [NAME...]   (default: all)
# Toolchains: .ci/setup installs them (wasm target, componentize-js/-py, Go,
# clang + wasi-libc, the componentize tool). `host plugins build` does the same.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

names=("$@")
if [ "${#names[@]}" -eq 0 ]; then
  for dir in plugins/*/; do
    name="$(basename "$dir")"
    [ "$name" = node_modules ] || names+=("$name")
  done
fi

# The language of a plugin folder, from the files it holds.
language() {
  local dir="$1"
  if [ -f "$dir/build.sh" ]; then echo script
  elif [ -f "$dir/Cargo.toml" ]; then echo rust
  elif compgen -G "$dir/*.go" > /dev/null; then echo go
  elif compgen -G "$dir/*.c" > /dev/null; then echo c
  elif compgen -G "$dir/*.js" > /dev/null; then echo js
  elif compgen -G "$dir/*.py" > /dev/null; then echo python
  fi
}

rust=()
other=()
for name in "${names[@]}"; do
  dir="plugins/$name"
  case "$(language "$dir")" in
    rust)
      if grep -q '^\[workspace\]' "$dir/Cargo.toml"; then
        # Its own workspace (a `host plugins new` scaffold): built alone,
        # into the shared target folder.
        CARGO_TARGET_DIR="$target_dir" env -u CARGO_ENCODED_RUSTFLAGS -u RUSTFLAGS \
          cargo build --quiet --profile guest --target wasm32-wasip2 --manifest-path "$dir/Cargo.toml"
        cp "$target_dir/wasm32-wasip2/guest/$name.wasm" "plugins/$name.wasm"
        echo "built plugins/$name.wasm ($(wc -c < "plugins/$name.wasm") bytes, rust)"
      else
        rust+=("$name")
      fi
      ;;
    "")
      echo "plugins/build.sh: $dir has no Cargo.toml, build.sh or .go/.c/.js/.py sources" >&2
      exit 1
      ;;
    *) other+=("$name") ;;
  esac
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
  dir="plugins/$name"
  out="$root/plugins/$name.wasm"
  lang="$(language "$dir")"
  sdk=()
  [ "$lang" = script ] || sdk=("guest-sdk/$lang")
  # Skip the slow componentizers when the output is newer than every source
  # (the folder, its SDK and the WIT).
  if [ -f "$out" ] && [ -z "$(find "$dir" "${sdk[@]}" wit -newer "$out" -type f -print -quit)" ]; then
    echo "up to date plugins/$name.wasm"
    continue
  fi
  if [ "$lang" = script ]; then
    bash "$dir/build.sh" "$out"
  else
    bash "guest-sdk/$lang/build.sh" "$dir" "$out"
  fi
done
