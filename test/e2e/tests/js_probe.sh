#!/bin/sh
# PDK behaviour seen by a real plugin server (kong-js-pluginserver, probe and
# bodylog plugins), one route per case:
#   /log-limits   fixture 08: in the log timer saved data works (ctx.shared,
#                 request headers as StepMultiMap, status, response header,
#                 buffered service body, serialize, cloned ngx.ctx), and
#                 kong.request.get_method raises "API disabled in the current
#                 context": the event is abandoned (no Step, no log line)
#   /log-rawbody  kong.request.get_raw_body in log: phase error
#   /log-var      kong.nginx.get_var in log: API disabled
#   /access-ser   fixture 07: kong.log.serialize in access: phase error, HTTP 500
#   /exit         fixture 09: kong.response.exit in access: 403 with body and
#                 header, no Step for that event; log sees status 403
#   /exit-body    after an exit, kong.service.response.get_raw_body in log
#                 raises (Kong cleared buffered proxying)
#   /multi        StepMultiMap encodings (query flag -> [], repeated values),
#                 kong.service.response.get_headers on a buffered response is
#                 an empty map (Kong 3.x quirk), response.set_header in response
#   /deny         the Lua plugin "deny" exits before bodylog: 403, one record
. "$(dirname "$0")/lib.sh"
require_js_peer

js_env bodylog probe
probe() { # tag calls-json
  printf '          - name: probe\n            config: { port: %s, tag: %s, calls: %s }\n' "$SINK_PORT" "$1" "'$2'"
}
route() { # name path
  printf '      - name: %s\n        paths: ["%s"]\n        plugins:\n' "$1" "$2"
}
{
  echo '_format_version: "3.0"'
  echo 'services:'
  echo '  - name: echo-service'
  echo "    url: http://127.0.0.1:$UP_PORT/echo"
  echo '    routes:'
  route log-limits /log-limits
  probe log-limits '{"access": [["kong.ctx.shared.set", "k", "v"]], "response": [], "log": [["kong.ctx.shared.get", "k"], ["kong.request.get_headers"], ["kong.response.get_status"], ["kong.response.get_header", "x-upstream"], ["kong.service.response.get_raw_body"], ["kong.log.serialize"], ["kong.nginx.get_ctx", "KONG_PROXIED"], ["kong.request.get_method"]]}'
  route log-rawbody /log-rawbody
  probe log-rawbody '{"log": [["kong.request.get_raw_body"]]}'
  route log-var /log-var
  probe log-var '{"log": [["kong.nginx.get_var", "uri"]]}'
  route access-ser /access-ser
  probe access-ser '{"access": [["kong.log.serialize"]]}'
  route exit /exit
  probe exit '{"access": [["kong.response.exit", 403, "denied by probe", {"X-Probe": "1"}]], "log": [["kong.response.get_status"]]}'
  route exit-body /exit-body
  probe exit-body '{"access": [["kong.response.exit", 401]], "log": [["kong.response.get_source"], ["kong.service.response.get_raw_body"]]}'
  route multi /multi
  probe multi '{"access": [["kong.request.get_query"], ["kong.request.get_headers"], ["kong.request.get_header", "x-rep"], ["kong.request.get_query_arg", "x"], ["kong.request.get_http_version"], ["kong.request.get_start_time"], ["kong.nginx.req_start_time"], ["kong.client.get_port"], ["kong.request.get_uri_captures"], ["kong.router.get_route"]], "response": [["kong.service.response.get_status"], ["kong.service.response.get_headers"], ["kong.service.response.get_header", "x-upstream"], ["kong.response.set_header", "X-From-Probe", "yes"]]}'
  route deny /deny
  printf '          - name: deny\n          - name: bodylog\n            config: { port: %s }\n' "$SINK_PORT"
} > "$T/kong.yml"

start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version 3.9
js_wait_ready

S=$T/sink.jsonl
tagged() { grep -c "\"tag\":\"$1\",\"probe_phase\":\"$2\"" "$S" 2>/dev/null || true; }
has_tagged() { [ "$(tagged "$1" "$2")" -ge 1 ]; }
wire() { $MPDECODE json "$T/wire-probe" > "$T/wire.jsonl"; }
# Data of the last S->K message of the event in which the server asked for
# method $1 (the event is abandoned when that is still the method request)
last_ask() {
  jq -s -c --arg m "$1" '
    ([.[]|select(.dir=="S->K" and (.value[3].Data|type)=="object" and .value[3].Data.Method==$m)|.value[3].EventId]|last) as $e
    | [.[]|select(.dir=="S->K" and .value[3].EventId==$e)]|last|.value[3].Data.Method' "$T/wire.jsonl"
}
k2s_step_data() { # event-asking-method: Data of the K->S Step answering it (sig)
  jq -s -c --arg m "$1" '
    . as $all
    | [range(0; length) as $i | select($all[$i].dir=="S->K" and ($all[$i].value[3].Data|type)=="object"
        and $all[$i].value[3].Data.Method==$m) | $i] | last as $i
    | $all[$i].conn as $c | ($all[$i].msgid + 1) as $next
    | [$all[]|select(.dir=="K->S" and .conn==$c and .msgid==$next)][0]
    | [.method, (.sig|capture("Data:(?<d>[a-z0-9]+)").d // "absent")]' "$T/wire.jsonl"
}

# --- /log-limits (fixture 08)
code=$(http POST /log-limits -H 'Content-Type: text/plain' --data-binary 'log phase')
assert_eq "$code" 200 "log-limits: HTTP status"
wait_until 10 "API disabled error" grep -q "API disabled in the current context" "$GW/logs/error.log"
wait_until 10 "probe access+response lines" has_tagged log-limits response
wire
assert_eq "$(last_ask kong.request.get_method)" '"kong.request.get_method"' "log-limits: event abandoned at get_method"
assert_eq "$(k2s_step_data kong.ctx.shared.get)" '["plugin.Step","fixstr"]' "log: ctx.shared.get from saved data"
assert_eq "$(k2s_step_data kong.request.get_headers)" '["plugin.StepMultiMap","fixmap"]' "log: saved request headers"
assert_eq "$(k2s_step_data kong.response.get_status)" '["plugin.Step","uint8"]' "log: saved status"
assert_eq "$(k2s_step_data kong.response.get_header)" '["plugin.Step","fixstr"]' "log: saved response header"
assert_eq "$(k2s_step_data kong.service.response.get_raw_body)" '["plugin.Step","bin8"]' "log: buffered service body"
assert_eq "$(k2s_step_data kong.log.serialize)" '["plugin.Step","str16"]' "log: serialize JSON text"
assert_eq "$(k2s_step_data kong.nginx.get_ctx)" '["plugin.Step","true"]' "log: cloned ngx.ctx"
assert_eq "$(jq -s -c '[.[]|select(.dir=="K->S" and (.sig|test("Data:bin8")))|.value[3][0].Data.b64|@base64d]|last' "$T/wire.jsonl")" \
  '"log phase"' "log: service body bytes"
assert_eq "$(tagged log-limits log)" 0 "log-limits: no log line (event died)"

# --- /log-rawbody, /log-var
http GET /log-rawbody >/dev/null
wait_until 10 "phase error" grep -q "function cannot be called in log phase (only in: rewrite, access, response, error, admin_api)" "$GW/logs/error.log"
ok "log: kong.request.get_raw_body raises Kong's phase error"
http GET /log-var >/dev/null
wire
wait_until 10 "get_var asked" sh -c "$MPDECODE json '$T/wire-probe' | grep -q kong.nginx.get_var"
wire
assert_eq "$(last_ask kong.nginx.get_var)" '"kong.nginx.get_var"' "log: kong.nginx.get_var abandoned (ngx.var in a timer)"

# --- /access-ser (fixture 07)
code=$(http GET /access-ser)
assert_eq "$code" 500 "access-ser: HTTP 500"
assert_jq "$T/body" '.message' 'An unexpected error occurred' "access-ser: Kong's 500 body"
assert_grep "$GW/logs/error.log" "function cannot be called in access phase (only in: log)" "access-ser: phase error logged"
wire
assert_eq "$(last_ask kong.log.serialize)" '"kong.log.serialize"' "access-ser: no Step after the error"

# --- /exit (fixture 09)
code=$(http GET /exit)
assert_eq "$code" 403 "exit: status"
assert_eq "$(cat "$T/body")" "denied by probe" "exit: body"
assert_grep "$T/headers" "^X-Probe: 1" "exit: header"
wait_until 10 "exit log line" has_tagged exit log
assert_jq "$S" 'select(.tag=="exit" and .probe_phase=="log")|.calls[0].data' '403' "exit: log phase sees 403"
wire
assert_eq "$(last_ask kong.response.exit)" '"kong.response.exit"' "exit: no Step after kong.response.exit"
assert_eq "$(k2s_step_data kong.response.get_status | jq -c '.[1]')" '"uint16"' "exit: status 403 as uint16"

# --- /exit-body
code=$(http GET /exit-body)
assert_eq "$code" 401 "exit-body: status"
wait_until 10 "buffered proxying error" grep -q "service body is only available with buffered proxying" "$GW/logs/error.log"
wire
assert_eq "$(last_ask kong.service.response.get_raw_body)" '"kong.service.response.get_raw_body"' \
  "exit-body: service body raises after an exit"
assert_eq "$(jq -s -c '[.[]|select(.dir=="K->S" and .value[3][0].Data=="exit")]|length' "$T/wire.jsonl")" 1 \
  "exit-body: get_source is \"exit\""

# --- /multi
code=$(http GET '/multi?x=1&x=2&flag&empty=' -H 'X-Rep: a' -H 'X-Rep: b')
assert_eq "$code" 200 "multi: status"
assert_grep "$T/headers" "^X-From-Probe: yes" "multi: response.set_header in the response phase"
wait_until 10 "multi response line" has_tagged multi response
A=$(jq -c 'select(.tag=="multi" and .probe_phase=="access")|.calls' "$S")
assert_eq "$(echo "$A" | jq -S -c '.[0].data')" '{"empty":[""],"flag":[],"x":["1","2"]}' "multi: query multimap"
assert_eq "$(echo "$A" | jq -c '.[1].data["x-rep"]')" '["a","b"]' "multi: repeated header"
assert_eq "$(echo "$A" | jq -c '[.[2].data, .[3].data, .[4].data]')" '["a","1",1.1]' "multi: get_header/get_query_arg/http_version"
assert_eq "$(echo "$A" | jq -S -c '.[8].data')" '{"named":[],"unnamed":[]}' "multi: uri captures"
assert_eq "$(echo "$A" | jq -c '.[9].data.name')" '"multi"' "multi: router.get_route"
wire
assert_eq "$(k2s_step_data kong.request.get_query)" '["plugin.StepMultiMap","fixmap"]' "multi: StepMultiMap for get_query"
assert_eq "$(k2s_step_data kong.request.get_start_time)" '["plugin.Step","uint64"]' "multi: start time in ms as uint64"
# seconds with millisecond resolution: a float64, or an integer type when the
# milliseconds are .000 (Kong's encoder writes integral numbers as integers)
rst=$(k2s_step_data kong.nginx.req_start_time)
case $rst in
  '["plugin.Step","float64"]'|'["plugin.Step","uint32"]') ok "multi: req_start_time float64 (or uint32 on a whole second): $rst" ;;
  *) fail "multi: req_start_time: got $rst" ;;
esac
assert_eq "$(k2s_step_data kong.router.get_route)" '["plugin.StepRoute","map16"]' "multi: StepRoute (route entity, nil fields kept)"
assert_eq "$(k2s_step_data kong.service.response.get_headers)" '["plugin.StepMultiMap","fixmap"]' \
  "multi: buffered service headers are StepMultiMap..."
assert_eq "$(jq -s -c '[.[]|select(.dir=="K->S" and .method=="plugin.StepMultiMap")|.value[3][0].Data|select(.=={})]|length' "$T/wire.jsonl")" \
  1 "...and an empty map, as Kong 3.x sends it"
R=$(jq -c 'select(.tag=="multi" and .probe_phase=="response")|.calls' "$S")
assert_eq "$(echo "$R" | jq -c '[.[0].data, .[2].data]')" '[200,"upstream"]' "multi: service status and header"

# --- /deny (Lua plugin exits before the plugin server's plugin)
before=$(lines "$S")
code=$(http POST /deny --data-binary 'nope')
assert_eq "$code" 403 "deny: status"
assert_jq "$T/body" '.message' 'denied by the deny plugin' "deny: body"
wait_lines "$S" $((before + 1)) 10
R=$(tail -n 1 "$S")
assert_eq "$(echo "$R" | jq -c '[.response.status, .source, .bodylog_id, .request.body, .upstream_status]')" \
  '[403,"kong",null,null,""]' "deny: bodylog still logs one record"
