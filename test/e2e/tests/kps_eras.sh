#!/bin/sh
# tcp-body-log behind the gateway under different eras of kong.log.serialize()
# (gateway/serialize.lua).  The same three exchanges under each era, with
# exact record fields:
#   normal         JSON POST to the echo upstream: both bodies as text;
#   short-circuit  request-termination ends the request in access: one record,
#                  both bodies "short_circuited", upstream_uri set, tries [],
#                  latencies.proxy -1;
#   error          the service's port is closed: 502, one record, both bodies
#                  "no_response_phase", six failed tries.
# What the eras change (kong/pdk/log.lua, kong/runloop/handler.lua):
#   3.0-3.2  no upstream_status          3.5  request.id, X-Kong-Request-Id
#   3.3-3.7  upstream_status "" when Kong buffers the response
#   3.6      source ("upstream" / "kong") 3.7  latencies.receive, workspace(_name)
#   3.8+     upstream_status = the buffered status (a number); Via "1.1 kong/x"
# The reasons are PROTOCOL.md R60; the 3.0-3.3 dump is R44.
# Eras run: $KPS_ERAS, default "3.3 3.4 3.9" (any of 3.0 ... 3.9 works); under
# 3.0-3.3 the plain -dump is refused first (no `description` in their
# metaschema), then the one made with --kong-version is used.
# Ports are free ones (lib.sh free_port), so it runs beside the other tests.
. "$(dirname "$0")/lib.sh"
require_tools nginx curl jq ss

GW_PORT=$(free_port); UP_PORT=$(free_port); SINK_PORT=$(free_port); DEAD_PORT=$(free_port)
SINK=$T/records.jsonl
start_upstream "$UP_PORT"
kps_start_collector "$SINK_PORT" "$SINK"

printf 'plugins = bundled,tcp-body-log\npluginserver_names = tcp-body-log\n' > "$T/kong.conf"
cat > "$T/kong.yml" <<YML
_format_version: "3.0"
services:
  - name: echo
    url: http://127.0.0.1:$UP_PORT/echo
    routes:
      - name: echo
        paths: ["/echo"]
    plugins:
      - name: tcp-body-log
        config: { host: 127.0.0.1, port: $SINK_PORT }
  - name: blocked
    url: http://127.0.0.1:$UP_PORT/echo
    routes:
      - name: blocked
        paths: ["/blocked"]
    plugins:
      - name: request-termination
        config: { status_code: 403, message: blocked by policy }
      - name: tcp-body-log
        config: { host: 127.0.0.1, port: $SINK_PORT }
  - name: down
    url: http://127.0.0.1:$DEAD_PORT/
    routes:
      - name: down
        paths: ["/down"]
    plugins:
      - name: tcp-body-log
        config: { host: 127.0.0.1, port: $SINK_PORT }
YML

n=0 # records expected so far
expect_record() { # uri -> $T/rec
  n=$((n + 1))
  wait_lines "$SINK" "$n" 15
  record_for "$SINK" "$1" > "$T/rec"
  assert_eq "$(lines "$T/rec")" 1 "$v: exactly one record for $1"
}

body='{"user":"ann","n":1}'
body_json=$(printf '%s' "$body" | jq -R .)

# ge <minor>: the era being run is 3.<minor> or later
ge() { [ "$minor" -ge "$1" ]; }
# words joined with ",", the empty ones dropped
csv() { echo "$*" | tr -s ' ' | sed 's/^ //; s/ $//; s/ /,/g'; }

for v in ${KPS_ERAS:-3.3 3.4 3.9}; do
  minor=${v#3.}
  case $v in
    3.0) full=3.0.2 ;; 3.1) full=3.1.1 ;; 3.2) full=3.2.2 ;; 3.3) full=3.3.1 ;; 3.4) full=3.4.2 ;;
    3.5) full=3.5.0 ;; 3.6) full=3.6.1 ;; 3.7) full=3.7.1 ;; 3.8) full=3.8.1 ;; 3.9) full=3.9.1 ;;
    *) fail "unknown era $v" ;;
  esac
  # the era's serialize keys
  top=$(csv client_ip latencies request response route service "$(ge 6 && echo source)" started_at tries \
            "$(ge 3 && echo upstream_status)" upstream_uri "$(ge 7 && echo workspace workspace_name)")
  req_keys=$(csv body body_encoding body_size body_truncated headers "$(ge 5 && echo id)" \
                 method querystring size uri url)
  lat_keys=$(csv kong proxy "$(ge 7 && echo receive)" request)

  GW=$T/gw-$v
  mkdir -p "$GW"
  kps_env_sockets "$GW"     # 3.0-3.8 default to /usr/local/kong/<name>.socket
  if ! ge 4; then
    # 3.0-3.3's metaschema has no `description`: the plain dump is refused,
    # the one made for the version (--kong-version) is not
    kps_env "$GW"
    if "$E2E/gateway.sh" start "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" \
         --kong-version "$v" > "$T/start.out" 2>&1; then
      "$E2E/gateway.sh" stop "$GW"
      fail "$v: a schema with descriptions was accepted"
    fi
    assert_grep "$T/start.out" "unknown attribute 'description'" "$v: descriptions refused"
  fi
  kps_env "$GW" "$v"
  start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version "$v"

  # --- normal: a JSON POST to the echo upstream
  q="/echo?era=$v"
  code=$(http POST "$q" -H 'Content-Type: application/json' --data-binary "$body")
  assert_eq "$code" 200 "$v: JSON POST proxied"
  rid=$(last_request_id)
  expect_record "$q"
  assert_jq "$T/rec" '[.request.body, .request.body_encoding, .request.body_size, .request.body_truncated]|tojson' \
    "[$body_json,\"text\",20,false]" "$v: request body"
  assert_jq "$T/rec" '[.response.body, .response.body_encoding, .response.body_size, .response.body_truncated]|tojson' \
    "[$body_json,\"text\",20,false]" "$v: response body"
  assert_jq "$T/rec" '[.request.method, .request.url, .upstream_uri, .response.status]|tojson' \
    "[\"POST\",\"http://127.0.0.1:$GW_PORT$q\",\"$q\",200]" "$v: method, url, upstream_uri, status"
  assert_jq "$T/rec" '[(.tries|length), .tries[0].ip, .tries[0].port, (.latencies.proxy >= 0)]|tojson' \
    "[1,\"127.0.0.1\",$UP_PORT,true]" "$v: one try, proxy latency measured"
  assert_jq "$T/rec" 'keys|join(",")' "$top" "$v: top-level keys"
  assert_jq "$T/rec" '.request|keys|join(",")' "$req_keys" "$v: request keys"
  assert_jq "$T/rec" '.latencies|keys|join(",")' "$lat_keys" "$v: latencies keys"
  if ge 8; then
    assert_jq "$T/rec" '.upstream_status|tojson' '200' "$v: upstream_status is the buffered status, a number"
  elif ge 3; then
    # buffered proxying: the main request has no $upstream_status, and no fallback before 3.8
    assert_jq "$T/rec" '.upstream_status|tojson' '""' "$v: upstream_status empty when buffered"
  fi
  if ge 5; then
    assert_eq "$(printf '%s' "$rid" | grep -c '^[0-9a-f]\{32\}$')" 1 "$v: X-Kong-Request-Id on the response"
    assert_jq "$T/rec" '.request.id' "$rid" "$v: request.id is the X-Kong-Request-Id"
  else
    assert_eq "$rid" "" "$v: no X-Kong-Request-Id before 3.5"
  fi
  if ge 6; then assert_jq "$T/rec" '.source' 'upstream' "$v: source upstream"; fi
  if ge 7; then assert_jq "$T/rec" '.workspace_name' 'default' "$v: workspace_name"; fi
  if ge 8; then
    assert_grep "$T/headers" "^Via: 1.1 kong/$full" "$v: Via is 1.1 kong/$full"
  else
    assert_grep "$T/headers" "^Via: kong/$full" "$v: Via is kong/$full"
  fi

  # --- short-circuit: request-termination (PRIORITY 2 > tcp-body-log's) exits in access
  q="/blocked?era=$v"
  code=$(http POST "$q" -H 'Content-Type: text/plain' --data-binary 'nope')
  assert_eq "$code" 403 "$v: request-termination answered"
  assert_jq "$T/body" '.message' 'blocked by policy' "$v: its body"
  expect_record "$q"
  assert_jq "$T/rec" '[.response.status, .request.body_skipped, .response.body_skipped]|tojson' \
    '[403,"short_circuited","short_circuited"]' "$v: both bodies short_circuited"
  assert_jq "$T/rec" '[(.request|has("body")), .request.body_size, (.response|has("body")), (.response|has("body_size"))]|tojson' \
    '[false,4,false,false]' "$v: no body, the request's size from Content-Length"
  # the router ran before any access plugin: upstream_uri set, tries an empty ARRAY
  assert_jq "$T/rec" '[.upstream_uri, (.tries|tojson), .latencies.proxy]|tojson' \
    "[\"/echo?era=$v\",\"[]\",-1]" "$v: upstream_uri set, tries [], latencies.proxy -1"
  assert_jq "$T/rec" 'keys|join(",")' "$top" "$v: top-level keys"
  if ge 6; then
    assert_jq "$T/rec" '.source' 'kong' "$v: source kong"
  else
    assert_jq "$T/rec" 'has("source")' 'false' "$v: no source key"
  fi

  # --- error: the service's port is closed
  q="/down?era=$v"
  code=$(http POST "$q" -H 'Content-Type: text/plain' --data-binary 'to nowhere')
  assert_eq "$code" 502 "$v: closed port gives 502"
  expect_record "$q"
  assert_jq "$T/rec" '[.response.status, .request.body_skipped, .request.body_size, .response.body_skipped]|tojson' \
    '[502,"no_response_phase",10,"no_response_phase"]' "$v: both bodies no_response_phase"
  # 1 + retries (5), each failed; the balancer ran, so Kong waited
  assert_jq "$T/rec" '[(.tries|length), ([.tries[].state]|unique), .tries[0].port, (.latencies.proxy >= 0)]|tojson' \
    "[6,[\"failed\"],$DEAD_PORT,true]" "$v: six failed tries"
  assert_jq "$T/rec" 'keys|join(",")' "$top" "$v: top-level keys"
  if ge 3; then assert_jq "$T/rec" '.upstream_status|tojson' '""' "$v: upstream_status empty"; fi
  if ge 6; then
    assert_jq "$T/rec" '.source' 'kong' "$v: source kong"
  else
    assert_jq "$T/rec" 'has("source")' 'false' "$v: no source key"
  fi

  stop_gateway "$GW"
done

assert_eq "$(lines "$SINK")" "$n" "no extra records"
