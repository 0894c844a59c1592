#!/bin/bash
# Quick start: installs what is needed, builds, and runs the main job on an
# embedded default, all on loopback:
#   upstream echo service  127.0.0.1:8080   (nginx, test/e2e/upstream.sh)
#   collector              127.0.0.1:5170   (build/test/tools/kps-collector)
#   gateway                127.0.0.1:8000   (nginx + Lua acting as Kong 3.9, test/e2e/gateway.sh)
#   plugin servers         tcp-body-log and c-hello, started by the gateway
# configured from kong.conf.example and examples/kong.yml.  It sends a sample
# request, prints the logged record and leaves everything running.
#
#   examples/quickstart.sh         start (rebuilds first)
#   examples/quickstart.sh stop    stop everything it started
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
DEMO=$BUILD/demo
BIN=$BUILD/src/kong-c-pluginserver
COLLECTOR=$BUILD/test/tools/kps-collector

stop() {
  [ -d "$DEMO" ] || return 0
  "$ROOT/test/e2e/gateway.sh" stop "$DEMO/gateway" >/dev/null 2>&1 || true
  "$ROOT/test/e2e/upstream.sh" stop "$DEMO/upstream" >/dev/null 2>&1 || true
  if [ -f "$DEMO/collector.pid" ]; then
    kill "$(cat "$DEMO/collector.pid")" 2>/dev/null || true
    rm -f "$DEMO/collector.pid"
  fi
}

if [ "${1:-}" = stop ]; then
  stop
  echo "stopped"
  exit 0
fi

"$ROOT/.ci/install-deps"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target kong-c-pluginserver kps-collector >/dev/null

stop
for port in 8000 8080 5170; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "quickstart: port $port is in use; stop what listens there first" >&2
    exit 1
  fi
done
rm -rf "$DEMO"
mkdir -p "$DEMO"

"$ROOT/test/e2e/upstream.sh" start "$DEMO/upstream" --port 8080 >/dev/null
"$COLLECTOR" --listen 127.0.0.1:5170 --out "$DEMO/records.jsonl" --quiet </dev/null >"$DEMO/collector.log" 2>&1 &
echo $! > "$DEMO/collector.pid"

# kong.conf.example uses Kong 3.9's defaults (/usr/local/bin/<name>); point
# the entries at this build instead, the way Kong reads KONG_* overrides.
export KONG_PLUGINSERVER_TCP_BODY_LOG_START_CMD="$BIN --plugin tcp-body-log -kong-prefix $DEMO/gateway"
export KONG_PLUGINSERVER_TCP_BODY_LOG_QUERY_CMD="$BIN --plugin tcp-body-log -dump"
export KONG_PLUGINSERVER_C_HELLO_START_CMD="$BIN --plugin c-hello -kong-prefix $DEMO/gateway"
export KONG_PLUGINSERVER_C_HELLO_QUERY_CMD="$BIN --plugin c-hello -dump"
"$ROOT/test/e2e/gateway.sh" start "$DEMO/gateway" --conf "$ROOT/kong.conf.example" \
  --yml "$ROOT/examples/kong.yml" --http-port 8000 >/dev/null

echo "== POST /echo through the gateway (tcp-body-log on this route)"
curl -sS -X POST http://127.0.0.1:8000/echo -H 'Content-Type: application/json' \
  -H 'Authorization: Bearer demo-token' -d '{"user":"ann","password":"s3cret","items":[1,2,3]}'
echo
i=0
while [ "$(wc -l < "$DEMO/records.jsonl")" -lt 1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
echo "== the record the collector received ($DEMO/records.jsonl)"
head -n 1 "$DEMO/records.jsonl" | jq '{request: (.request | {method, uri, headers, body, body_encoding, body_size, body_truncated}),
  response: (.response | {status, body, body_encoding, body_size, body_truncated}), upstream_uri, latencies, started_at}'
echo "== GET /hello (c-hello on this route)"
curl -sS -D - -o /dev/null http://127.0.0.1:8000/hello | grep -i '^x-hello-from-c'
echo
echo "The stack is running. Try:"
echo "  curl -X POST http://127.0.0.1:8000/echo -H 'Content-Type: application/json' -d '{\"token\":\"t\",\"a\":1}'"
echo "  tail -f $DEMO/records.jsonl"
echo "  $BIN --status --socket $DEMO/gateway/tcp-body-log.socket"
echo "Stop it with: examples/quickstart.sh stop"
