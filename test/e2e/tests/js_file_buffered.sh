#!/bin/sh
# Fixture kong-wire/06: a 16 KiB body is spooled to a file (client_body_buffer_size
# 8k); the JS bodylog plugin asks kong.request.get_raw_body.
#   mode 3.7        Kong <= 3.7: get_raw_body() returns nil, packing it as bin
#                   raises, the client gets 500, the access event gets no Step
#                   (its msgid is consumed, its connection dropped), the log
#                   phase still runs on a new connection: one record.
#   mode 3.9-noarg  Kong 3.9 without the size argument: same as 3.7.
#   mode 3.9-arg    Kong 3.9, get_raw_body(0): the file is read, 200, body logged.
. "$(dirname "$0")/lib.sh"
require_js_peer

mode=${1:?mode: 3.7, 3.9-noarg or 3.9-arg}
case "$mode" in
  3.7) version=3.7; arg="" ;;
  3.9-noarg) version=3.9; arg="" ;;
  3.9-arg) version=3.9; arg=", max_body_arg: 0" ;;
  *) fail "unknown mode $mode" ;;
esac

js_env bodylog
cat > "$T/kong.yml" <<EOF
_format_version: "3.0"
services:
  - name: echo-service
    url: http://127.0.0.1:$UP_PORT
    routes:
      - name: echo-route
        paths: ["/echo"]
        strip_path: false
      - name: barrier-route
        paths: ["/barrier"]
        strip_path: true
plugins:
  - name: bodylog
    config: { port: $SINK_PORT $arg }
EOF
start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version "$version"
js_wait_ready

head -c 16384 /dev/zero | tr '\0' 'x' > "$T/big.txt"
code=$(http POST /echo -H 'Content-Type: text/plain' --data-binary "@$T/big.txt")
rid=$(last_request_id)
cp "$T/body" "$T/big.body"; cp "$T/headers" "$T/big.headers"
assert_grep "$GW/logs/error.log" "a client request body is buffered to a temporary file" "body spooled to a file"

# barrier: a later request's record arrives after the first one's
wait_lines "$T/sink.jsonl" 1 15
bcode=$(http GET /barrier)
assert_eq "$bcode" 200 "barrier request"
wait_lines "$T/sink.jsonl" 2 15
assert_eq "$(lines "$T/sink.jsonl")" 2 "records: one per request"
jq -c "select(.request.id == \"$rid\")" "$T/sink.jsonl" > "$T/rec.json"
assert_eq "$(lines "$T/rec.json")" 1 "exactly one record for the big request"

W=$T/wire-bodylog
$MPDECODE json "$W" > "$T/wire.jsonl"
$MPDECODE list "$W" > "$T/listing.txt"
k2s() { jq -s -c "[.[]|select(.dir==\"K->S\")|$1]" "$T/wire.jsonl"; }

if [ "$mode" = 3.9-arg ]; then
  assert_eq "$code" 200 "HTTP status"
  assert_eq "$(wc -c < "$T/big.body" | tr -d ' ')" 16384 "echoed body length"
  assert_jq "$T/rec.json" '[(.request.body|length), .response.status, .source]|tojson' '[16384,200,"upstream"]' "record"
  assert_eq "$(jq -s -c '[.[]|select(.dir=="S->K")|.value[3].Data|objects|select(.Method=="kong.request.get_raw_body")|.Args]|.[0]' "$T/wire.jsonl")" \
    '[0]' "plugin passed the size argument"
  assert_eq "$(k2s 'select(.sig|test("Data:bin16"))|.value[3][0].Data.bin')" '[16384,16384]' \
    "request and service bodies sent as bin16"
  exit 0
fi

assert_eq "$code" 500 "HTTP status"
assert_jq "$T/big.body" '.message' 'An unexpected error occurred' "Kong's 500 body"
assert_grep "$T/big.headers" '^Content-Type: application/json; charset=utf-8' "500 content type"
assert_grep "$GW/logs/error.log" "attempt to get length of local 'str' (a nil value)" "packing nil as bin raised"
assert_jq "$T/rec.json" '[.response.status, .source, .bodylog_id, .request.body, .upstream_uri, .upstream_status]|tojson' \
  '[500,"kong",null,null,"/echo",""]' "record of the failed request"

# first request: StartInstance(1), HandleEvent access(2), msgid 3 raised while
# packing and never sent, then the log event on a new connection (4..6)
first_log=$(jq -s '[.[]|select(.dir=="K->S" and .method=="plugin.HandleEvent" and .value[3][0].EventName=="log")][0].msgid' "$T/wire.jsonl")
assert_eq "$first_log" 4 "msgid 3 consumed, never sent"
assert_eq "$(k2s 'select(.msgid<=6)|[.conn,.msgid,.method]')" \
  '[[1,1,"plugin.StartInstance"],[1,2,"plugin.HandleEvent"],[2,4,"plugin.HandleEvent"],[2,5,"plugin.Step"],[2,6,"plugin.Step"]]' \
  "access event abandoned without a Step; its connection not reused"
assert_eq "$(k2s 'select(.msgid<=6 and .method=="plugin.HandleEvent")|.value[3][0].EventName')" \
  '["access","log"]' "no response phase after the error"
