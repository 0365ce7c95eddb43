#!/usr/bin/env bash
# Side by side: `host` and the OpenAI Agents Python SDK run the same staged
# workflow (examples/peer_workflow = ../shared/peer/workflow_bench.py) against
# the peer's own mock server, on the same machine, in the same sitting, with
# the peer's closed-loop method. Prints one JSON line per measurement.
#
# Usage: host/benches/compare_peer.sh [DURATION_S] [WARMUP_S]
# Needs ../shared/peer (beside the repository) and PyPI access for the SDK.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
peer="${PEER_DIR:-$root/../shared/peer}"
duration="${1:-10}"
warmup="${2:-4}"
venv="$root/target/peer-venv"
port=18080

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check openai-agents uvloop
fi
cd "$root"
cargo bench -p host --bench workflow --no-run 2> /dev/null
bench="$(ls -t target/release/deps/workflow-* | grep -v '\.d$' | head -1)"

start_mock() {
  "$venv/bin/python" "$peer/mock_openai.py" --port "$port" --latency-ms "$1" > /dev/null 2>&1 &
  mock_pid=$!
  for _ in $(seq 50); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2> /dev/null; then return; fi
    sleep 0.1
  done
  echo "mock did not start" >&2
  exit 1
}
stop_mock() { kill "$mock_pid" 2> /dev/null || true; wait "$mock_pid" 2> /dev/null || true; }
trap stop_mock EXIT

url="http://127.0.0.1:$port/v1"
for latency in 0 50; do
  start_mock "$latency"
  levels="1,16,128"
  [ "$latency" = 50 ] && levels="128"
  (cd host && "../$bench" closed-loop --base-url "$url" --mock-pid "$mock_pid" \
      --concurrency "$levels" --duration "$duration" --warmup "$warmup") \
    | sed "s/^{/{\"runner\":\"host\",\"mock_latency_ms\":$latency,/"
  for c in ${levels//,/ }; do
    "$venv/bin/python" "$peer/workflow_bench.py" --base-url "$url" --concurrency "$c" \
        --duration "$duration" --warmup "$((warmup + c / 16))" --stagger 1 --mock-pid "$mock_pid" \
      | sed "s/^{/{\"runner\":\"python-sdk\",\"mock_latency_ms\":$latency,/"
  done
  stop_mock
done
