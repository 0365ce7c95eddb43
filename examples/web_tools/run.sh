#!/usr/bin/env bash
# Runs the web_tools example end to end: starts the stand-in weather API
# (api.py) on 127.0.0.1:8765, runs the workflow — offline by default, a real
# model when OPENAI_API_KEY or OPENAI_BASE_URL is set — and stops the API.
# The token is the example's own; the operator pairs it with the API
# (--credential) and the host adds it to the plugin's requests there: the
# plugin never sees it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$(dirname "$here")")"
export WEATHER_API_TOKEN="${WEATHER_API_TOKEN:-example-weather-token}"
python3 "$here/api.py" 8765 &
api=$!
trap 'kill $api 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/8765) 2>/dev/null && break
  sleep 0.1
done
mode=(--offline)
if [ -n "${OPENAI_API_KEY:-}" ] || [ -n "${OPENAI_BASE_URL:-}" ]; then
  mode=()
fi
"$root/target/debug/host" run "$here/spec.json" --plugins "$root/plugins" \
  --allow-egress 127.0.0.1:8765 --credential WEATHER_API_TOKEN=http://127.0.0.1:8765 \
  "${mode[@]}" "$@"
