# Sourced by the bench scripts: starts and stops the project's mock server
# (release build). Needs `root` set to the repository.

start_mock() { # LATENCY_MS -> sets mock_pid, mock_out (its log) and url
  mock_out="$(mktemp)"
  "$root/target/release/mock-openai" --port 0 --latency-ms "$1" > "$mock_out" 2>&1 &
  mock_pid=$!
  for _ in $(seq 100); do
    url="$(grep -o 'http://127.0.0.1:[0-9]*' "$mock_out" | head -1 || true)"
    [ -n "$url" ] && break
    sleep 0.05
  done
  url="$url/v1"
}
stop_mock() {
  [ -n "${mock_pid:-}" ] || return 0
  kill "$mock_pid" 2> /dev/null || true
  wait "$mock_pid" 2> /dev/null || true
  rm -f "${mock_out:-}"
}
