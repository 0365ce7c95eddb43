# Shared by the Go and C build scripts: the path of the `componentize` tool
# (guest-sdk/componentize), built on first use. $COMPONENTIZE overrides it.
componentize_tool() {
  if [ -n "${COMPONENTIZE:-}" ]; then
    echo "$COMPONENTIZE"
    return
  fi
  local root target
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  target="${CARGO_TARGET_DIR:-$root/target}"
  if [ ! -x "$target/debug/componentize" ] || [ -n "$(find "$root/guest-sdk/componentize" -newer "$target/debug/componentize" -type f -print -quit)" ]; then
    (cd "$root" && env -u CARGO_ENCODED_RUSTFLAGS -u RUSTFLAGS cargo build --quiet -p componentize >&2)
  fi
  echo "$target/debug/componentize"
}
