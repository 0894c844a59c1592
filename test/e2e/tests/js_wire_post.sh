#!/bin/sh
# Gateway <-> kong-js-pluginserver (kong-pdk 0.6.0), bodylog plugin, one
# 10-byte POST: the bytes the gateway sends must have the shapes and wire
# types Kong's own client produced in fixture kong-wire/12-js-post-10B-text
# (str16 not str8, bin8 bodies, integer types, map shapes, msgid 1..10 on one
# connection), and the collector gets one record with both bodies and the
# serialize fields.
. "$(dirname "$0")/lib.sh"
require_js_peer

js_env bodylog
cat > "$T/kong.yml" <<EOF
_format_version: "3.0"
services:
  - name: echo-service
    url: http://127.0.0.1:$UP_PORT
    routes:
      - name: echo-route
        paths: ["/"]
        strip_path: false
plugins:
  - name: bodylog
    config: { port: $SINK_PORT }
EOF
start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version 3.9
js_wait_ready

code=$(http POST /echo -H 'Content-Type: text/plain' -H 'Authorization: Bearer secret' --data-binary 'hello 1234')
assert_eq "$code" 200 "HTTP status"
assert_eq "$(cat "$T/body")" "hello 1234" "echoed body"
assert_grep "$T/headers" "^Via: 1.1 kong/3.9" "Via header added like Kong"
rid=$(last_request_id)

wait_lines "$T/sink.jsonl" 1 15
S=$T/sink.jsonl
assert_jq "$S" '.request.body' 'hello 1234' "request body in record"
assert_jq "$S" '.response.body' 'hello 1234' "service response body in record"
assert_jq "$S" '.bodylog_id' '1' "ctx.shared value read back in log"
assert_jq "$S" '.request.id' "$rid" "request.id is the X-Kong-Request-Id"
assert_jq "$S" '[.request.method, .request.uri, .request.url]|join(" ")' \
  "POST /echo http://127.0.0.1:$GW_PORT/echo" "request method/uri/url"
assert_jq "$S" '.request.headers.authorization' 'REDACTED' "authorization redacted"
assert_jq "$S" '.request.querystring|tojson' '{}' "empty querystring is an object"
assert_jq "$S" '[.response.status, .upstream_status, (.upstream_status|type)]|tojson' \
  '[200,200,"number"]' "status; buffered upstream_status is a number"
assert_jq "$S" '[.source, .workspace_name, .upstream_uri, .client_ip]|join(" ")' \
  "upstream default /echo 127.0.0.1" "source/workspace_name/upstream_uri/client_ip"
assert_jq "$S" '[.route.name, .service.name, .route.strip_path, .service.retries]|tojson' \
  '["echo-route","echo-service",false,5]' "route and service entities"
assert_jq "$S" '.latencies|keys|tojson' '["kong","proxy","receive","request"]' "latencies keys"
assert_jq "$S" '[(.tries|length), .tries[0].port, .tries[0].ip]|tojson' "[1,$UP_PORT,\"127.0.0.1\"]" "tries"
assert_jq "$S" '(.started_at|type) + " " + (.request.size|type) + " " + (.response.size|type)' \
  "number number number" "numeric fields"

W=$T/wire-bodylog
$MPDECODE list "$W" > "$T/listing.txt"
$MPDECODE summary "$W" > "$T/summary.txt"
$MPDECODE json "$W" > "$T/wire.jsonl"

# K->S part of fixture 12's summary (map keys sorted)
cat > "$T/expected-k2s.txt" <<'EOF'
K->S plugin.HandleEvent args
  3 x fixarray[fixmap{EventName:fixstr,InstanceId:posfixint}]
K->S plugin.StartInstance args
  1 x fixarray[fixmap{Config:str16,Name:fixstr}]
K->S plugin.Step args
  2 x fixarray[fixmap{Data:bin8,EventId:posfixint}]
  2 x fixarray[fixmap{Data:posfixint,EventId:posfixint}]
  1 x fixarray[fixmap{Data:str16,EventId:posfixint}]
  1 x fixarray[fixmap{EventId:posfixint}]
EOF
awk '/^K->S/{p=1} /^S->K/{p=0} p' "$T/summary.txt" > "$T/k2s.txt"
if ! diff -u "$T/expected-k2s.txt" "$T/k2s.txt"; then
  cat "$T/listing.txt"
  fail "K->S message shapes differ from Kong's (fixture 12)"
fi
ok "K->S message shapes and wire types equal fixture 12"

assert_eq "$(jq -s -c '[.[]|select(.dir=="K->S")|.msgid]' "$T/wire.jsonl")" '[1,2,3,4,5,6,7,8,9,10]' "msgid sequence"
assert_eq "$(jq -s -c '[.[]|.conn]|unique' "$T/wire.jsonl")" '[1]' "one pooled connection"
assert_eq "$(jq -s -c '[.[]|select(.dir=="K->S")|.method]' "$T/wire.jsonl")" \
  '["plugin.StartInstance","plugin.HandleEvent","plugin.Step","plugin.Step","plugin.HandleEvent","plugin.Step","plugin.Step","plugin.HandleEvent","plugin.Step","plugin.Step"]' \
  "method sequence"
assert_eq "$(jq -s -c '[.[]|select(.dir=="K->S")|.sig|select(test("str8"))]|length' "$T/wire.jsonl")" 0 "no str8 from the gateway"
assert_eq "$(jq -s -c '[.[]|select(.dir=="K->S" and (.sig|test("Data:bin8")))|.value[3][0].Data.b64|@base64d]' "$T/wire.jsonl")" \
  '["hello 1234","hello 1234"]' "bodies sent as bin8"
assert_eq "$(jq -s -r '[.[]|select(.dir=="K->S" and .method=="plugin.StartInstance")][0].value[3][0].Config|fromjson|[.port, .timeout, .max_body_arg, .__seq__, (.__plugin_id|length), (.__key__|startswith("plugins:bodylog:::::"))]|tojson' "$T/wire.jsonl")" \
  "[$SINK_PORT,10000,null,1,36,true]" "StartInstance Config: defaults, null for unset, Kong's extra keys"
assert_eq "$(jq -s -c '[.[]|select(.dir=="K->S" and (.sig|test("Data:str16")))|.value[3][0].Data|fromjson|.request.body]' "$T/wire.jsonl")" \
  '[null]' "serialize JSON text (str16) has no body"
