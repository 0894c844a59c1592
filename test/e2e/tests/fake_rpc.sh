#!/bin/sh
# The gateway's RPC client against a scripted plugin server
# (tools/fakeserver.js), for what the JS peer cannot show:
#   * rewrite runs for global instances only;
#   * nil results (nil,err from get_body, an unknown PDK method, kong.log.err)
#     are Steps without a Data key, never StepError;
#   * kong.service.request.enable_buffering() buffers without a response phase;
#   * an error from HandleEvent or a Step is logged and the request goes on;
#   * "No Plugin Instance N" (any case) resets the instances and retries;
#   * a changed serverPid notification drops the cached instances;
#   * msgids: one counter per plugin per worker, no gaps.
. "$(dirname "$0")/lib.sh"
require_js_peer          # fakeserver.js uses @msgpack/msgpack from bench/peers/js

GW=$T/gw
GW_PORT=$(free_port); UP_PORT=$(free_port)
mkdir -p "$GW"
start_upstream "$UP_PORT"
echo 1000 > "$T/pid"

cat > "$T/script.json" <<EOF
{
  "info": {"Name": "fake", "Version": "0.1.0", "Priority": 100,
           "Phases": ["rewrite", "access", "log"],
           "Schema": {"name": "fake", "fields": [{"config": {"type": "record", "fields": [
             {"mode": {"type": "string", "default": "global"}}]}}]}},
  "pid_file": "$T/pid",
  "modes": {
    "global": {"rewrite": [{"call": "kong.request.get_path"}, "ret"], "access": ["ret"], "log": ["ret"]},
    "basic": {
      "access": [{"call": "kong.request.get_body"}, {"call": "kong.nope.nothing"},
                 {"call": "kong.log.err", "args": ["from fake"]},
                 {"call": "kong.service.request.enable_buffering"}, "ret"],
      "log": [{"call": "kong.service.response.get_raw_body"}, {"call": "kong.response.get_status"}, "ret"]},
    "error": {"access": [{"error": "boom in HandleEvent"}]},
    "steperr": {"access": [{"call": "kong.request.get_method"}, {"error": "kaput in Step"}]},
    "forget": {"access": [{"forget": "No Plugin Instance %d"}, {"call": "kong.request.get_method"}, "ret"]},
    "pid": {"access": ["ret"]}
  }
}
EOF
FAKE="$(command -v node) $E2E/tools/fakeserver.js"
cat > "$T/kong.conf" <<EOF
plugins = bundled,fake
pluginserver_names = fake
pluginserver_fake_socket = $GW/fake.sock
pluginserver_fake_start_cmd = $FAKE serve $GW/fake.sock $T/script.json $T/fake.jsonl
pluginserver_fake_query_cmd = $FAKE dump $T/script.json
log_level = info
EOF
route() { printf '      - name: %s\n        paths: ["/%s"]\n        plugins:\n          - name: fake\n            config: { mode: %s }\n' "$1" "$1" "$1"; }
{
  echo '_format_version: "3.0"'
  echo 'services:'
  echo "  - name: up"
  echo "    url: http://127.0.0.1:$UP_PORT/echo"
  echo '    routes:'
  for m in basic error steperr forget pid; do route "$m"; done
  echo 'plugins:'
  echo '  - name: fake'
} > "$T/kong.yml"

start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version 3.9
L=$T/fake.jsonl
starts() { jq -s --arg m "$1" '[.[]|select(.method=="plugin.StartInstance" and (.params[0].Config|fromjson|.mode)==$m)]|length' "$L"; }

# --- basic: rewrite (global), nil results, enable_buffering, log
code=$(http POST /basic -H 'Content-Type: text/plain' --data-binary 'basic body')
assert_eq "$code" 200 "basic: status"
wait_until 10 "basic log event" sh -c "jq -s -e '[.[]|select(.method==\"plugin.Step\" and .data==200)]|length>0' '$L'"
assert_eq "$(jq -s -c '[.[]|select(.method=="plugin.HandleEvent")|.params[0].EventName]|.[0:3]' "$L")" \
  '["rewrite","access","log"]' "basic: rewrite (global instance), access, log"
assert_eq "$(jq -s -c '[.[]|select(.method=="plugin.Step")|[.has_data, .data]]' "$L")" \
  '[[true,"/basic"],[false,null],[false,null],[false,null],[false,null],[true,{"bin":10,"text":"basic body"}],[true,200]]' \
  "basic: Steps (get_path; get_body/unknown/log.err/enable_buffering without Data; buffered body; status)"
assert_eq "$(jq -s '[.[]|select(.method=="plugin.StepError")]|length' "$L")" 0 "no StepError"
assert_grep "$GW/logs/error.log" "could not find pdk method: kong.nope.nothing" "unknown method logged"
assert_grep "$GW/logs/error.log" "\[error\].*\[kong\] .*\[fake\] from fake" "kong.log.err from the plugin, namespaced"

# --- errors from HandleEvent and from a Step: logged, request continues
code=$(http GET /error)
assert_eq "$code" 200 "error in HandleEvent: request continues"
assert_grep "$GW/logs/error.log" "\[error\].*boom in HandleEvent" "HandleEvent error logged"
code=$(http GET /steperr)
assert_eq "$code" 200 "error in Step: request continues"
assert_grep "$GW/logs/error.log" "\[error\].*kaput in Step" "Step error logged"

# --- "No Plugin Instance 7" (Go-style wording): reset, StartInstance, retry
code=$(http GET /forget)
assert_eq "$code" 200 "forget: status"
assert_grep "$GW/logs/error.log" "\[warn\].*No Plugin Instance" "forget: warning logged"
assert_eq "$(starts forget)" 2 "forget: StartInstance sent again"
assert_eq "$(jq -s -c '[.[]|select(.method=="plugin.Step" and .data=="GET")]|length' "$L")" 2 \
  "forget: the retried event ran (get_method answered)"

# --- serverPid: same pid keeps instances, a new pid drops them
http GET /pid >/dev/null
http GET /pid >/dev/null
assert_eq "$(starts pid)" 1 "pid: one StartInstance while the pid is unchanged"
echo 2000 > "$T/pid"
http GET /pid >/dev/null
assert_eq "$(starts pid)" 2 "pid: new serverPid drops the cached instances"

# --- msgids: one counter for this plugin in this (single) worker, no gaps
stop_gateway "$GW"
assert_eq "$(jq -s -c '[.[]|.msgid]|sort|. == [range(1; length+1)]' "$L")" true "msgids 1..N without gaps"
