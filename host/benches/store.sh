#!/usr/bin/env bash
# The run store's cost: the peer workflow with the SQLite store against the
# in-memory store (and no store), alternating A/B so drift hits both alike.
# Prints one JSON line per measurement. See docs/BENCHMARKS.md.
# Usage: host/benches/store.sh [DURATION_S] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
duration="${1:-10}"
rounds="${2:-2}"
cargo build --release --quiet -p mock-openai
cargo bench -p host --bench workflow --no-run 2> /dev/null
bench="$root/$(ls -t target/release/deps/workflow-* | grep -v '\.d$' | head -1)"
spec=examples/peer_workflow/spec.json

# shellcheck source=host/benches/mock.sh
source "$root/host/benches/mock.sh"
trap 'stop_mock' EXIT
cd host

# Sequential, no model time: the store's cost per run in the worst case
# (sqlite-memory: SQLite with no file, to split that cost into the SQL
# engine's and the file's).
for _ in $(seq "$rounds"); do
  for store in none memory sqlite-memory sqlite; do
    "$bench" overhead --spec "$spec" --runs 3000 --store "$store"
  done
done

# Closed loop against the mock: 0 ms (CPU-bound; the peer's concurrencies
# 1, 16, 128) and 50 ms model latency; at 0 ms / 1 also SQLite with no file.
for setting in "0 1" "0 16" "0 128" "50 16" "50 128"; do
  set -- $setting
  stores="memory sqlite"
  [ "$setting" = "0 1" ] && stores="memory sqlite-memory sqlite"
  start_mock "$1"
  for _ in $(seq "$rounds"); do
    for store in $stores; do
      "$bench" closed-loop --spec "$spec" --base-url "$url" --mock-pid "$mock_pid" \
        --concurrency "$2" --duration "$duration" --warmup 3 --store "$store"
    done
  done
  stop_mock
done
