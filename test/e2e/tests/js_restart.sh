#!/bin/sh
# Process management and recovery with kong-js-pluginserver:
#   * the gateway (worker 0) started the server; its output reaches error.log
#     at info as "[js-bodylog:<pid>] ...";
#   * the server is killed: requests keep being served (the cached instance's
#     calls fail, are logged, the request goes on: Kong fails open);
#   * it is respawned, at most once per second;
#   * the new server answers "no plugin instance #0": the gateway resets the
#     instance, sends StartInstance again and logging resumes;
#   * gateway.sh stop sends SIGTERM to the server through exit_worker.
. "$(dirname "$0")/lib.sh"
require_js_peer

js_env bodylog
cat > "$T/kong.yml" <<EOF
_format_version: "3.0"
services:
  - name: echo-service
    url: http://127.0.0.1:$UP_PORT
    routes:
      - name: all
        paths: ["/"]
        strip_path: false
plugins:
  - name: bodylog
    config: { port: $SINK_PORT }
EOF
start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version 3.9
js_wait_ready

pid1=$(server_pid js-bodylog)
wait_grep 10 "$GW/logs/error.log" "\[info\].*\[js-bodylog:$pid1\] .*server started at" "server output logged at info with [name:pid]"

code=$(http POST /echo --data-binary 'one')
assert_eq "$code" 200 "request before the kill"
wait_lines "$T/sink.jsonl" 1 15

spawned_at() { date +%s.%N -r "$GW/pluginservers/js-bodylog.pid"; }
new_pid() { [ "$(server_pid js-bodylog)" != "$1" ]; }

kill -9 "$pid1"
wait_until 5 "server $pid1 gone" sh -c "! kill -0 $pid1"
# while it is down (or just respawned): every request is still served
i=0
while [ $i -lt 5 ]; do
  code=$(http POST /echo --data-binary "down $i")
  assert_eq "$code" 200 "request $i while the server is down or restarting"
  i=$((i + 1))
done

wait_until 10 "respawn" new_pid "$pid1"
pid2=$(server_pid js-bodylog)
t2=$(spawned_at)
wait_until 20 "respawned server accepting" socket_accepts "$GW/bodylog.real.sock"
kill -9 "$pid2"
wait_until 10 "second respawn" new_pid "$pid2"
t3=$(spawned_at)
gap=$(awk "BEGIN { print $t3 - $t2 }")
awk "BEGIN { exit !($gap >= 0.95) }" || fail "respawned after ${gap}s (< 1 s)"
ok "respawn waits at least one second (${gap}s)"
pid3=$(server_pid js-bodylog)
wait_until 20 "third server accepting" socket_accepts "$GW/bodylog.real.sock"

before=$(lines "$T/sink.jsonl")
code=$(http POST /echo?again --data-binary 'again')
assert_eq "$code" 200 "request after recovery"
wait_lines "$T/sink.jsonl" $((before + 1)) 15
assert_jq "$T/sink.jsonl" "select(.request.uri==\"/echo?again\")|[.request.body,.response.body]|join(\",\")" "again,again" \
  "logging resumed with both bodies"
assert_grep "$GW/logs/error.log" "\[warn\].*no plugin instance #0" "\"no plugin instance\" seen and retried"
W=$T/wire-bodylog
starts=$($MPDECODE json "$W" | jq -s '[.[]|select(.method=="plugin.StartInstance")]|length')
[ "$starts" -ge 2 ] || fail "expected a second StartInstance, got $starts"
ok "StartInstance sent again after the restart ($starts in total)"

stop_gateway "$GW"
wait_until 10 "server $pid3 stopped" sh -c "! kill -0 $pid3"
assert_grep "$GW/logs/error.log" "successfully stopped pluginserver 'js-bodylog', pid $pid3" "SIGTERM at worker exit"
