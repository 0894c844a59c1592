#!/bin/sh
# A service on a port nothing listens on, bodylog (which buffers) on it.
# As in Kong: the buffered subrequest fails, the client gets Kong's 502, the
# response phase never runs, the log phase does: exactly one record, with the
# six tries (1 + retries 5) and source "kong".
. "$(dirname "$0")/lib.sh"
require_js_peer

js_env bodylog
cat > "$T/kong.yml" <<EOF2
_format_version: "3.0"
services:
  - name: dead
    url: http://127.0.0.1:$DEAD_PORT
    routes:
      - name: dead-route
        paths: ["/dead"]
  - name: alive
    url: http://127.0.0.1:$UP_PORT
    routes:
      - name: barrier
        paths: ["/barrier"]
plugins:
  - name: bodylog
    config: { port: $SINK_PORT }
EOF2
start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version 3.9
js_wait_ready

code=$(http POST /dead --data-binary 'to nowhere')
rid=$(last_request_id)
assert_eq "$code" 502 "HTTP status"
assert_jq "$T/body" '.message' 'An invalid response was received from the upstream server' "Kong's 502 body"
wait_lines "$T/sink.jsonl" 1 15
assert_eq "$(http GET /barrier)" 200 "barrier request"
wait_lines "$T/sink.jsonl" 2 15
jq -c "select(.request.id == \"$rid\")" "$T/sink.jsonl" > "$T/rec.json"
assert_eq "$(lines "$T/rec.json")" 1 "exactly one record for the 502"
assert_jq "$T/rec.json" '[.response.status, .source, .request.body, .response.body, (.tries|length), .tries[0].state]|tojson' \
  '[502,"kong","to nowhere",null,6,"failed"]' "record"
$MPDECODE json "$T/wire-bodylog" > "$T/wire.jsonl"
assert_eq "$(jq -s -c '[.[]|select(.method=="plugin.HandleEvent")|.value[3][0].EventName]|.[0:2]' "$T/wire.jsonl")" \
  '["access","log"]' "no response event for the failed request"
