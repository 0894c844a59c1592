#!/bin/sh
# Scenario 8: kong-c-pluginserver killed mid-traffic (SIGKILL) behind the
# gateway, run from kong.conf.example and examples/kong.yml:
#   * requests keep being served while it is down (Kong fails open);
#   * the gateway respawns it;
#   * the new process answers "no plugin instance #<id>" (ids never repeat
#     across processes), the gateway starts a new instance and logging
#     resumes, with both bodies.
. "$(dirname "$0")/lib.sh"
require_tools nginx curl jq ss

GW=$T/gw
GW_PORT=8000
SINK=$T/records.jsonl
start_upstream 8080
kps_start_collector 5170 "$SINK"
kps_env "$GW"
start_gateway "$GW" --conf "$REPO/kong.conf.example" --yml "$REPO/examples/kong.yml" \
  --http-port "$GW_PORT" --kong-version 3.9 --workers 2 --log-level info

code=$(http POST /echo/before --data-binary 'before')
assert_eq "$code" 200 "request before the kill"
wait_lines "$SINK" 1 10
pid1=$(server_pid tcp-body-log)
wait_until 10 "the server's first log line in Kong's log" \
  grep -q "\[info\].*\[tcp-body-log:$pid1\] .*listening on" "$GW/logs/error.log"
ok "server log lines reach Kong's log at info, prefixed [tcp-body-log:$pid1]"

# Traffic in the background while the server is killed.
i=0
( while [ $i -lt 300 ]; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -X POST --data-binary "during $i" \
      "http://127.0.0.1:$GW_PORT/echo/during?i=$i"
    i=$((i + 1))
  done > "$T/codes" ) &
traffic=$!
sleep 0.2
kill -9 "$pid1"
wait_until 10 "server $pid1 gone" sh -c "! kill -0 $pid1"
wait "$traffic"
assert_eq "$(grep -c "^200$" "$T/codes")" 300 "all 300 requests served through the kill"
assert_grep "$GW/logs/error.log" "\[error\].*tcp-body-log.socket" "some of them found the server down (Kong logged the failed call and went on)"

new_pid() { [ "$(server_pid tcp-body-log)" != "$1" ]; }
wait_until 10 "respawn" new_pid "$pid1"
pid2=$(server_pid tcp-body-log)
wait_until 10 "respawned server accepting" socket_accepts "$GW/tcp-body-log.socket"

before=$(lines "$SINK")
code=$(http POST '/echo/after' -H 'Content-Type: text/plain' --data-binary 'after')
assert_eq "$code" 200 "request after recovery"
wait_lines "$SINK" $((before + 1)) 15
assert_jq "$SINK" 'select(.request.uri=="/echo/after")|[.request.body,.response.body]|@csv' '"after","after"' \
  "logging resumed with both bodies"
assert_grep "$GW/logs/error.log" "\[warn\].*no plugin instance #" "\"no plugin instance\" answered and retried"
[ "$pid2" != "$pid1" ] || fail "same pid after respawn"
ok "respawned as pid $pid2"

stop_gateway "$GW"
wait_until 10 "server $pid2 stopped" sh -c "! kill -0 $pid2"
assert_grep "$GW/logs/error.log" "successfully stopped pluginserver 'tcp-body-log', pid $pid2" "SIGTERM at worker exit"
