#!/bin/sh
# tcp-body-log and c-hello on kong-c-pluginserver, behind the gateway, run
# from exactly the files users copy: kong.conf.example and examples/kong.yml
# (gateway 8000, upstream 8080, collector 5170, as that file says).
# Scenarios of issue 4: JSON POST, binary body, truncation, file-buffered
# request body (Kong 3.9 and 3.7 behaviour), GET with repeated headers and
# query args, upstream 502, another plugin exiting early, c-hello,
# 200 concurrent requests.
. "$(dirname "$0")/lib.sh"
require_tools nginx curl jq ss

GW=$T/gw
GW_PORT=8000
SINK=$T/records.jsonl
start_upstream 8080
kps_start_collector 5170 "$SINK"
kps_env "$GW"

run_gateway() { # kong version
  start_gateway "$GW" --conf "$REPO/kong.conf.example" --yml "$REPO/examples/kong.yml" \
    --http-port "$GW_PORT" --kong-version "$1" --workers 2
}

n=0 # records expected so far
expect_record() { # uri -> $T/rec
  n=$((n + 1))
  wait_lines "$SINK" "$n" 10
  record_for "$SINK" "$1" > "$T/rec"
  assert_eq "$(lines "$T/rec")" 1 "exactly one record for $1"
}

run_gateway 3.9

# 1. JSON POST: both bodies and the serialize fields.
code=$(http POST '/echo?trace=1' -H 'Content-Type: application/json' -H 'Authorization: Bearer t0k' \
  --data-binary '{"user":"ann","password":"s3cret","nested":{"token":"abc"}}')
assert_eq "$code" 200 "JSON POST proxied"
expect_record '/echo?trace=1'
masked='{"user":"ann","password":"REDACTED","nested":{"token":"REDACTED"}}'
assert_jq "$T/rec" '.request.body' "$masked" "request body, fields masked"
assert_jq "$T/rec" '.response.body' "$masked" "response body (echoed), fields masked"
assert_jq "$T/rec" '[.request.body_encoding, .request.body_size, .request.body_truncated]|@csv' '"text",59,false' "request body markers"
assert_jq "$T/rec" '.request.headers.authorization' 'REDACTED' "authorization redacted"
assert_jq "$T/rec" '[.request.method, .request.url, .request.querystring.trace, .upstream_uri, .response.status]|@csv' \
  '"POST","http://127.0.0.1:8000/echo?trace=1","1","/echo?trace=1",200' "serialize fields"
assert_jq "$T/rec" '[.route.name, .service.name, (.latencies|has("proxy")), (.started_at > 0), .client_ip]|@csv' \
  '"echo","echo",true,true,"127.0.0.1"' "route, service, latencies, started_at, client_ip"
assert_jq "$T/rec" 'has("tcp_body_log_exchange")' 'false' "join key removed"
grep -q 's3cret' "$SINK" && fail "a masked password reached the collector"
ok "the password never reached the collector"

# 2. Binary body: base64 both ways.
head -c 600 /dev/urandom > "$T/bin"
code=$(http POST /echo/bin -H 'Content-Type: application/octet-stream' --data-binary "@$T/bin")
assert_eq "$code" 200 "binary POST proxied"
expect_record /echo/bin
assert_jq "$T/rec" '[.request.body_encoding, .response.body_encoding, .request.body_size]|@csv' '"base64","base64",600' "binary bodies in base64"
assert_eq "$(jq -r .request.body "$T/rec")" "$(base64 -w0 < "$T/bin")" "request body bytes, exact"

# 3. Truncation: a 20000-byte response over max_body_size (8192).
code=$(http GET /bytes/20000)
assert_eq "$code" 200 "large response proxied"
expect_record /bytes/20000
assert_jq "$T/rec" '[.response.body_size, .response.body_truncated, (.response.body|length)]|@csv' '20000,true,8192' "response truncated and marked"
assert_jq "$T/rec" '.request.body' '' "empty GET body"

# 4a. File-buffered request body (16 KiB > client_body_buffer_size 8k), Kong 3.9.
head -c 16384 /dev/zero | tr '\0' 'x' > "$T/big"
code=$(http POST /echo/file -H 'Content-Type: text/plain' --data-binary "@$T/big")
assert_eq "$code" 200 "file-buffered request body: request not failed (3.9)"
expect_record /echo/file
assert_jq "$T/rec" '[.request.body_skipped, .request.body_size]|@csv' '"file_buffered",16384' "record says the request body was in a file"
assert_jq "$T/rec" '[.response.body_size, .response.body_truncated]|@csv' '16384,true' "response body still logged"

# 5. GET with repeated headers and query args.
code=$(http GET '/echo/multi?x=1&x=2&flag' -H 'X-Rep: a' -H 'X-Rep: b')
assert_eq "$code" 200 "GET proxied"
expect_record '/echo/multi?x=1&x=2&flag'
assert_jq "$T/rec" '.request.querystring.x|@csv' '"1","2"' "repeated query arg"
assert_jq "$T/rec" '.request.querystring.flag' 'true' "bare query flag"
assert_jq "$T/rec" '.request.headers["x-rep"]|@csv' '"a","b"' "repeated header"

# 6. Upstream 502: still one record.
code=$(http GET /down)
assert_eq "$code" 502 "dead upstream gives 502"
expect_record /down
assert_jq "$T/rec" '.response.status' '502' "status 502 logged"
assert_jq "$T/rec" '[.request.body_skipped, .response.body_skipped]|@csv' '"no_response_phase","no_response_phase"' "why no bodies"

# 7. Another plugin exits early (request-termination, 403): still one record.
code=$(http POST /blocked --data-binary 'nope')
assert_eq "$code" 403 "request-termination answered"
expect_record /blocked
assert_jq "$T/rec" '[.response.status, .request.body_skipped, .response.body_skipped]|@csv' \
  '403,"short_circuited","short_circuited"' "short-circuited exchange logged"

# 9. c-hello: the header reaches the client (no record: not on this route).
code=$(http GET /hello)
assert_eq "$code" 200 "c-hello route"
assert_grep "$T/headers" "^x-hello-from-c: C says hi to 127.0.0.1:8000" "c-hello header"

# 10. 200 concurrent requests: exactly 200 records, each matched to its request.
urls=""
i=0
while [ $i -lt 200 ]; do urls="$urls -o /dev/null http://127.0.0.1:$GW_PORT/echo/c?id=$i"; i=$((i + 1)); done
# shellcheck disable=SC2086
curl -s --parallel --parallel-max 200 -X POST -H 'Content-Type: text/plain' --data-binary 'concurrent' \
  -w '%{http_code}\n' $urls > "$T/codes"
assert_eq "$(grep -c '^200$' "$T/codes")" 200 "200 concurrent requests served"
n=$((n + 200))
wait_lines "$SINK" "$n" 30
assert_eq "$(jq -r 'select(.request.uri|startswith("/echo/c?id=")) | .request.querystring.id' "$SINK" | sort -n | uniq | wc -l | tr -d ' ')" 200 \
  "200 distinct records, one per request"
assert_eq "$(jq -r 'select(.request.uri|startswith("/echo/c?id=")) | [.request.body, .response.body]|@csv' "$SINK" | sort -u)" \
  '"concurrent","concurrent"' "each with both bodies"
assert_eq "$(lines "$SINK")" "$n" "no extra records"

stop_gateway "$GW"

# 4b. The same file-buffered body under Kong 3.7's get_raw_body behaviour:
# tcp-body-log never calls get_raw_body, so the request is not failed either.
kps_env_sockets "$GW"
run_gateway 3.7
code=$(http POST /echo/file37 -H 'Content-Type: text/plain' --data-binary "@$T/big")
assert_eq "$code" 200 "file-buffered request body: request not failed (3.7)"
expect_record /echo/file37
assert_jq "$T/rec" '[.request.body_skipped, .request.body_size]|@csv' '"file_buffered",16384' "record says so (3.7)"
stop_gateway "$GW"
