#!/bin/sh
# 200 concurrent POSTs through 4 gateway workers to kong-js-pluginserver
# (bodylog): every request 200, exactly 200 records, each record's bodies
# matching its own request; one StartInstance per worker at most.
. "$(dirname "$0")/lib.sh"
require_js_peer
require_tools xargs

js_env bodylog
cat > "$T/kong.yml" <<EOF2
_format_version: "3.0"
services:
  - name: echo
    url: http://127.0.0.1:$UP_PORT
    routes:
      - name: all
        paths: ["/"]
        strip_path: false
plugins:
  - name: bodylog
    config: { port: $SINK_PORT }
EOF2
start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version 3.9 --workers 4
js_wait_ready

seq 1 200 | xargs -P 200 -I{} curl -s --max-time 30 -o /dev/null -w '%{http_code}\n' \
  -X POST --data-binary 'req-{}' "http://127.0.0.1:$GW_PORT/echo?n={}" > "$T/codes"
assert_eq "$(grep -c '^200$' "$T/codes")" 200 "200 responses with status 200"
wait_lines "$T/sink.jsonl" 200 60
assert_eq "$(http GET /echo?barrier)" 200 "barrier request"
wait_lines "$T/sink.jsonl" 201 30
assert_eq "$(jq -s '[.[]|select(.request.querystring.n != null)]|length' "$T/sink.jsonl")" 200 "exactly 200 records"
assert_eq "$(jq -s '[.[]|select(.request.querystring.n != null)|.request.querystring.n]|unique|length' "$T/sink.jsonl")" 200 \
  "one record per request"
assert_eq "$(jq -s '[.[]|select(.request.querystring.n != null and (.request.body != ("req-" + .request.querystring.n) or .response.body != .request.body))]|length' "$T/sink.jsonl")" \
  0 "every record carries its own request's bodies"
starts=$($MPDECODE json "$T/wire-bodylog" | jq -s '[.[]|select(.method=="plugin.StartInstance")]|length')
[ "$starts" -ge 1 ] && [ "$starts" -le 4 ] || fail "StartInstance sent $starts times (expected 1..4, one per worker)"
ok "StartInstance once per worker at most ($starts)"
assert_no_grep "$GW/logs/error.log" "\[error\].*\[kong\]" "no RPC errors"
