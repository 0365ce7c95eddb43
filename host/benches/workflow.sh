#!/usr/bin/env bash
# The engine benchmarks of docs/BENCHMARKS.md against the project's mock
# server (release build, in its own process). Prints one JSON line each.
# Usage: host/benches/workflow.sh [DURATION_S]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
duration="${1:-10}"
cargo build --release --quiet -p mock-openai
cargo bench -p host --bench workflow --no-run 2> /dev/null
bench="$root/$(ls -t target/release/deps/workflow-* | grep -v '\.d$' | head -1)"

# shellcheck source=host/benches/mock.sh
source "$root/host/benches/mock.sh"
trap 'stop_mock' EXIT
cd host

# Throughput of analysis_parallel at 0 ms model latency.
start_mock 0
"$bench" closed-loop --spec examples/analysis_parallel/spec.json --base-url "$url" --mock-pid "$mock_pid" \
  --concurrency 1,16,128 --duration "$duration" --warmup 3
stop_mock

# Orchestration overhead per step: the peer workflow on the offline model.
"$bench" overhead --spec examples/peer_workflow/spec.json --runs 5000
"$bench" overhead --spec examples/analysis_parallel/spec.json --runs 5000

# One parallel stage of 16 branches at 50 ms model latency.
start_mock 50
"$bench" fanout --base-url "$url" --branches 16 --reps 30
stop_mock

# 10,000 runs in flight at once, each waiting on one call to a slow (5 s)
# model (a one-agent workflow: 10,000 sockets, within the fd limit).
start_mock 5000
"$bench" hold --spec examples/simple_assistant/spec.json --base-url "$url" --runs 10000
stop_mock
