#!/usr/bin/env bash
# The demo: serve the sample footage over RTSP on loopback, run pipelines/demo.toml against it.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-8554}"
seconds="${2:-30}"
bin=target/debug/citywatch

log=$(mktemp)
"$bin" serve-samples --port "$port" >"$log" 2>&1 &
server=$!
# The city platform: takes the filed cases, dispatches each after 5 s and reports it
# handled 60 s later by signed callback, which starts the closure check.
"$bin" platform-sim --listen 127.0.0.1:8091 \
  --webhook-secret demo-webhook-secret-0123 --platform-secret demo-platform-secret-0123 \
  --callback http://127.0.0.1:8080/platform/callback \
  --dispatch-after-s 5 --handle-after-s 60 >/dev/null 2>&1 &
platform=$!
config=pipelines/demo.toml
trap 'kill $server $platform 2>/dev/null || true; rm -f "$log"; [ "$config" = pipelines/demo.toml ] || rm -f "$config"' EXIT
for _ in $(seq 1 300); do
  grep -q '^listening on' "$log" && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; echo "demo: the sample server failed to start"; exit 1; }
  sleep 0.1
done
grep '^serving' "$log"
if [ "$port" != 8554 ]; then
  # Beside the original, so its relative paths (footage, categories, .local) still hold.
  config=pipelines/.test-demo-$port.toml
  sed "s/127.0.0.1:8554/127.0.0.1:$port/" pipelines/demo.toml >"$config"
fi
# A demo operator account, with a fresh password each time.
login=$("$bin" user add "$config" demo --role operator --generate)
echo "demo: running $config for ${seconds}s; camera health every 5 s"
echo "demo: review UI at http://127.0.0.1:8080 ($login); the parked van and car reach the"
echo "      review queue about 70 s after the start; a confirmed case goes to the simulated"
echo "      platform on 127.0.0.1:8091, is dispatched, reported handled a minute later and"
echo "      checked on camera (its history: /cases/CASE_NUMBER)"
"$bin" run "$config" --for "$seconds"
