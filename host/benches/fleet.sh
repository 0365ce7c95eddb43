#!/usr/bin/env bash
# The fleet benchmarks of docs/BENCHMARKS.md: throughput of 1, 2 and 3
# `host` processes sharing one PostgreSQL database (one `host serve`, which
# accepts the runs and executes too, plus `host worker`s), and one process
# on PostgreSQL against one on SQLite. The model is the project's mock at
# LATENCY_MS; each run is a chain of three agents (three sequential model
# calls), so a process with --max-runs N finishes at most N / (3 × latency)
# runs a second: latency-bound, the fleet should scale with its size.
#
# PostgreSQL is a throwaway cluster (initdb in a temporary folder, loopback
# only; as root it runs as the `postgres` user), stopped at the end.
#
# Usage: host/benches/fleet.sh [RUNS] [MAX_RUNS] [LATENCY_MS]
# Prints one JSON line per measurement. HOST_BENCH_PROFILE=debug uses the
# debug build instead of the release one (numbers then overstate the host's
# own cost).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
runs="${1:-600}"
max_runs="${2:-8}"
latency="${3:-50}"

profile="${HOST_BENCH_PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build --release --quiet -p host -p mock-openai
else
  cargo build --quiet -p host -p mock-openai
fi
bin="$root/target/$profile"
# shellcheck source=host/benches/mock.sh
source "$root/host/benches/mock.sh"
work="$(mktemp -d)"
pids=()
pg_pid=""
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  stop_mock
  # The postmaster itself (runuser does not pass signals on): fast shutdown.
  if [ -f "$work/pg/postmaster.pid" ]; then
    kill -INT "$(head -n 1 "$work/pg/postmaster.pid")" 2> /dev/null || true
  fi
  [ -n "$pg_pid" ] && wait "$pg_pid" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the cluster
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$work"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" initdb -D "$work/pg" -U host --auth=trust -E UTF8 --no-sync > /dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as_pg[@]}" postgres -D "$work/pg" -p "$port" -k "$work" -c listen_addresses=127.0.0.1 \
  -c max_connections=300 > "$work/pg.log" 2>&1 &
pg_pid=$!
# One database for every PostgreSQL round (each counts only its own runs).
db_url="postgres://host@127.0.0.1:$port/postgres"
for _ in $(seq 100); do
  "$bin/host" runs list --db "$db_url" > /dev/null 2>&1 && break
  sleep 0.1
done

# --- the workflow: three agents in sequence
mkdir -p "$work/workflows"
python3 - "$work/workflows" << 'PY'
import json, sys
agent = lambda n: {"instructions": f"Agent {n}.", "model": {"provider": "openai", "name": "gpt-4.1-mini"}}
json.dump({
    "providers": {"openai": {"type": "openai", "api": "chat"}},
    "agents": {"one": agent("one"), "two": agent("two"), "three": agent("three")},
    "workflow": {"key": "chain", "stages": [
        {"name": f"s{i}", "mode": "sequential", "steps": [{"agent": a}]}
        for i, a in enumerate(["one", "two", "three"])]},
}, open(f"{sys.argv[1]}/chain.json", "w"))
PY

start_mock "$latency"
common=(--plugins plugins --workflows "$work/workflows" --max-runs "$max_runs" --no-watch)
host_env=(env OPENAI_BASE_URL="$url" OPENAI_API_KEY=sk-mock
  HOST_CACHE_DIR="$root/target/bench-plugin-cache" HOST_CACHE_KEY="$root/target/bench-plugin-cache.key")

start_fleet() { # DB WORKERS -> sets api
  local db="$1" workers="$2"
  "${host_env[@]}" HOST_DB="$db" "$bin/host" serve "${common[@]}" \
    --max-queued 100000 --listen 127.0.0.1:0 2> "$work/serve.log" &
  pids+=($!)
  for _ in $(seq 1 $((workers - 1))); do
    "${host_env[@]}" HOST_DB="$db" "$bin/host" worker "${common[@]}" \
      2>> "$work/worker.log" &
    pids+=($!)
  done
  api=""
  for _ in $(seq 300); do
    api="$(grep -o 'listening on http://[0-9.:]*' "$work/serve.log" | sed 's/listening on //' || true)"
    [ -n "$api" ] && break
    sleep 0.1
  done
  [ -n "$api" ] || { cat "$work/serve.log"; exit 1; }
}

measure() { # LABEL STORE WORKERS
  python3 - "$api" "$runs" "$1" "$2" "$3" "$max_runs" "$latency" << 'PY'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
api, runs, label, store, workers, max_runs, latency = sys.argv[1:8]
runs = int(runs)
def call(method, path, body=None):
    req = urllib.request.Request(api + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)
with ThreadPoolExecutor(16) as pool:
    ids = list(pool.map(lambda i: call("POST", "/v1/runs",
        {"workflow": "chain", "input": f"bench topic #{i}"})["run_id"], range(runs)))
wanted = set(ids)
deadline = time.time() + 600
while True:
    done, cursor = [], None
    while True:
        page = call("GET", "/v1/runs?status=completed&limit=500" + (f"&cursor={cursor}" if cursor else ""))
        done += [r for r in page["runs"] if r["run_id"] in wanted]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if len(done) >= runs or time.time() > deadline:
        break
    time.sleep(0.2)
assert len(done) == runs, f"{len(done)} of {runs} completed"
span = (max(r["updated_at_ms"] for r in done) - min(r["created_at_ms"] for r in done)) / 1000
print(json.dumps({"bench": "fleet", "label": label, "store": store, "processes": int(workers),
    "max_runs_each": int(max_runs), "model_latency_ms": int(latency), "runs": runs,
    "seconds": round(span, 2), "runs_per_s": round(runs / span, 1)}))
PY
}

for n in 1 2 3; do
  start_fleet "$db_url" "$n"
  measure "postgres x$n" postgres "$n"
  stop_all
done
start_fleet "$work/sqlite.db" 1
measure "sqlite x1" sqlite 1
stop_all
