#!/usr/bin/env bash
# The `host serve` benchmarks of docs/BENCHMARKS.md: the release `host serve`
# in its own process, the model server in another, the client (the `serve`
# bench) in a third. Prints one JSON line per measurement.
#
# Usage: host/benches/serve.sh [DURATION_S] [HOLD_RUNS]
# The side-by-side with the Python SDK needs ../shared/peer and PyPI access
# (the SDK goes into target/peer-venv, as in compare_peer.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
duration="${1:-10}"
hold_runs="${2:-10000}"
peer="${PEER_DIR:-$root/../shared/peer}"
venv="$root/target/peer-venv"
peer_port=18080

cargo build --release --quiet -p host -p mock-openai
cargo bench -p host --bench serve --no-run 2> /dev/null
bench="$root/$(ls -t target/release/deps/serve-* | grep -v '\.d$' | head -1)"

# shellcheck source=host/benches/mock.sh
source "$root/host/benches/mock.sh"
work="$(mktemp -d)"
server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2> /dev/null || true
  wait "$server_pid" 2> /dev/null || true
  server_pid=""
}
trap 'stop_server; stop_mock; rm -rf "$work"' EXIT

# The workflows: the peer workflow (its offline script under scripts/, which
# the server does not scan) and a one-agent workflow for the hold test.
mkdir -p "$work/workflows/scripts"
cp examples/peer_workflow/script.json "$work/workflows/scripts/peer_workflow.json"
python3 - "$work/workflows" << 'PY'
import json, sys
out = sys.argv[1]
spec = json.load(open("examples/peer_workflow/spec.json"))
spec["providers"]["offline"]["script"] = "scripts/peer_workflow.json"
json.dump(spec, open(f"{out}/peer_workflow.json", "w"))
json.dump({
    "providers": {"openai": {"type": "openai", "api": "responses"}},
    "agents": {"a": {"instructions": "Answer.", "model": {"provider": "openai", "name": "gpt-4.1-mini"}}},
    "workflow": {"key": "one_agent", "steps": [{"agent": "a"}]},
}, open(f"{out}/one_agent.json", "w"))
PY

start_server() { # MODEL_URL ARGS... -> sets server_pid, server
  local model_url="$1"
  shift
  rm -f "$work/host.db"* "$work/server.log"
  OPENAI_BASE_URL="$model_url" OPENAI_API_KEY=sk-mock HOST_DB="$work/host.db" \
    HOST_CACHE_DIR="$root/target/bench-plugin-cache" HOST_CACHE_KEY="$root/target/bench-plugin-cache.key" \
    "$root/target/release/host" serve --plugins plugins --workflows "$work/workflows" \
    --listen 127.0.0.1:0 "$@" 2> "$work/server.log" &
  server_pid=$!
  server=""
  for _ in $(seq 600); do
    server="$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/server.log" | head -1 | sed 's/listening on //' || true)"
    [ -n "$server" ] && break
    sleep 0.05
  done
  [ -n "$server" ] || { cat "$work/server.log" >&2; exit 1; }
}

# Idle RSS, then the API's overhead per run at 0 ms model latency.
start_mock 0
start_server "$url"
sleep 1
"$bench" idle --server-pid "$server_pid"
"$bench" overhead --server "$server" --base-url "$url" --runs 300
stop_server
stop_mock

# Concurrency 128 at 50 ms, through the API, side by side with the Python
# SDK, both against the peer's own mock.
if [ -d "$peer" ]; then
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check openai-agents uvloop
  fi
  "$venv/bin/python" "$peer/mock_openai.py" --port "$peer_port" --latency-ms 50 > /dev/null 2>&1 &
  mock_pid=$!
  for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $peer_port), 0.2)" 2> /dev/null && break
    sleep 0.1
  done
  peer_url="http://127.0.0.1:$peer_port/v1"
  start_server "$peer_url" --max-runs 256
  "$bench" closed-loop --server "$server" --server-pid "$server_pid" --mock-pid "$mock_pid" \
    --workflow peer_workflow --concurrency 128 --duration "$duration" --warmup 4 \
    | sed 's/^{/{"runner":"host serve","mock_latency_ms":50,/'
  stop_server
  "$venv/bin/python" "$peer/workflow_bench.py" --base-url "$peer_url" --concurrency 128 \
      --duration "$duration" --warmup 12 --stagger 1 --mock-pid "$mock_pid" \
    | sed 's/^{/{"runner":"python-sdk","mock_latency_ms":50,/'
  stop_mock
fi

# RSS with HOLD_RUNS runs waiting on a slow (30 s) model.
start_mock 30000
start_server "$url" --max-runs "$hold_runs" --max-queued "$hold_runs"
"$bench" hold --server "$server" --server-pid "$server_pid" --workflow one_agent --runs "$hold_runs"
stop_server
stop_mock
