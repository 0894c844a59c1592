#!/bin/sh
# Scenario 11: tcp-body-log to a TLS collector behind the gateway, with
# verification against a CA made for this run and a client certificate
# (mutual TLS) that the collector requires.
. "$(dirname "$0")/lib.sh"
require_tools nginx curl jq ss openssl

GW=$T/gw
GW_PORT=$(free_port)
UP_PORT=$(free_port)
SINK_PORT=$(free_port)
SINK=$T/records.jsonl
sh "$REPO/test/sink/gen-certs.sh" "$T/certs" >/dev/null 2>&1 || fail "gen-certs.sh failed"
start_upstream "$UP_PORT"
kps_start_collector "$SINK_PORT" "$SINK" --tls-cert "$T/certs/server.pem" --tls-key "$T/certs/server.key" \
  --tls-client-ca "$T/certs/ca.pem" --client-cn-file "$T/client-cn"
kps_env "$GW"
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
        config:
          host: 127.0.0.1
          port: $SINK_PORT
          tls: true
          tls_sni: localhost
          tls_ca_file: $T/certs/ca.pem
          tls_client_cert: $T/certs/client.pem
          tls_client_key: $T/certs/client.key
YML
start_gateway "$GW" --conf "$REPO/kong.conf.example" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version 3.9

code=$(http POST /echo -H 'Content-Type: application/json' --data-binary '{"over":"tls"}')
assert_eq "$code" 200 "proxied"
wait_lines "$SINK" 1 15
assert_jq "$SINK" '[.request.body, .response.body]|join(" ")' '{"over":"tls"} {"over":"tls"}' "record over TLS with both bodies"
assert_grep "$T/client-cn" "kps-test-client" "the collector verified our client certificate"
"$KPS_SERVER" --status --socket "$GW/tcp-body-log.socket" > "$T/status.json"
assert_jq "$T/status.json" '.Plugins["tcp-body-log"].sinks | to_entries[0].value | [.records_sent, .tls_failures]|@csv' \
  '1,0' "one record sent, no TLS failure"
stop_gateway "$GW"
