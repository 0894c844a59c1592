#!/bin/sh
# Issue 11 (d): tcp-body-log over mutual TLS into a real collector (rsyslog
# or syslog-ng, argument 1) with examples/collectors/<collector>/json-mtls.conf,
# which requires a client certificate signed by the run's CA: the plugin
# presents one (tls_client_cert, tls_client_key) and verifies the collector
# (tls_ca_file, tls_sni); its 10 records are stored whole, no TLS failure.
# (collector_mtls_refused.sh: the same config refusing other clients.)
. "$(dirname "$0")/lib.sh"
. "$REPO/test/collectors/collectors.sh"
require_tools nginx curl jq ss openssl
COLL=${1:?usage: collector_mtls.sh rsyslog|syslog-ng}
coll_require "$COLL"

N=10
PORT=$(free_port)
sh "$REPO/test/sink/gen-certs.sh" "$T/certs" >/dev/null 2>&1 || fail "gen-certs.sh failed"
coll_start "$COLL" json-mtls.conf c1 "$PORT"
coll_gateway "host: 127.0.0.1, port: $PORT, tls: true, tls_sni: localhost, tls_ca_file: $T/certs/ca.pem,
  tls_client_cert: $T/certs/client.pem, tls_client_key: $T/certs/client.key"

i=1
while [ $i -le $N ]; do
  coll_post "$i" $((i * 200))
  i=$((i + 1))
done
wait_lines "$T/c1.out" $N 20
coll_wait_sent $N 10
assert_eq "$(coll_sink_jq '[.tls_failures, .connects]|@csv')" "0,1" "one connection, no TLS failure"
coll_assert_json_lines "$T/c1.out" $N "$COLL stored every record"
assert_eq "$(coll_ids "$T/c1.out" | tr '\n' ' ')" "$(seq 1 $N | sort | tr '\n' ' ')" "ids 1..$N, each once"
assert_jq "$T/c1.out" 'select(.request.body_size != (.request.body|length) or .request.body_truncated) | .request.uri' "" "bodies whole"
stop_gateway "$GW"
