#!/bin/sh
# Issue 11 (c): tcp-body-log over TLS with verification (tls_ca_file,
# tls_sni) into a real collector (rsyslog or syslog-ng, argument 1) with
# examples/collectors/<collector>/json-tls.conf.  /log verifies against the
# run's CA: its 10 records are stored whole.  /log2 verifies a second
# instance of the same collector against an unrelated CA: the handshake
# fails, it stores nothing, and its records stay queued (verification is
# really on).
. "$(dirname "$0")/lib.sh"
. "$REPO/test/collectors/collectors.sh"
require_tools nginx curl jq ss openssl
COLL=${1:?usage: collector_tls.sh rsyslog|syslog-ng}
coll_require "$COLL"

N=10
PORT=$(free_port)
PORT2=$(free_port)
sh "$REPO/test/sink/gen-certs.sh" "$T/certs" >/dev/null 2>&1 || fail "gen-certs.sh failed"
coll_start "$COLL" json-tls.conf c1 "$PORT"
coll_start "$COLL" json-tls.conf c2 "$PORT2"
TLS="host: 127.0.0.1, tls: true, tls_sni: localhost"
coll_gateway "$TLS, port: $PORT, tls_ca_file: $T/certs/ca.pem" "$TLS, port: $PORT2, tls_ca_file: $T/certs/wrongca.pem"

i=1
while [ $i -le $N ]; do
  coll_post "$i" $((i * 200))
  COLL_ROUTE=/log2 coll_post "w$i" 10
  i=$((i + 1))
done
wait_lines "$T/c1.out" $N 20
wait_until 10 "TLS failures towards the wrong-CA sink" sh -c "grep -q 'sink tls://127.0.0.1:$PORT2: TLS handshake failed: certificate verification' '$GW/logs/error.log'"
coll_wait_sent $N 10 ":$PORT"
assert_eq "$(coll_sink_jq '[.records_sent, .tls_failures > 0, .queue_depth]|@csv' ":$PORT2")" "0,true,$N" \
  "wrong CA: nothing sent, TLS failures, its $N records still queued"
assert_eq "$(coll_sink_jq .tls_failures ":$PORT")" 0 "the run's CA: no TLS failure"
assert_eq "$(lines "$T/c2.out")" 0 "the collector behind the wrong CA stored nothing"
coll_assert_json_lines "$T/c1.out" $N "$COLL stored every verified record"
assert_eq "$(coll_ids "$T/c1.out" | tr '\n' ' ')" "$(seq 1 $N | sort | tr '\n' ' ')" "ids 1..$N, each once, none from the wrong-CA sink"
assert_jq "$T/c1.out" 'select(.request.body_size != (.request.body|length) or .request.body_truncated) | .request.uri' "" "bodies whole"
stop_gateway "$GW"
