#!/bin/sh
# Issue 11 (g): framing: syslog (RFC 5424, octet counting) into a real
# collector's stock syslog source (rsyslog or syslog-ng, argument 1), plain
# (examples/collectors/<collector>/syslog-tcp.conf, /log) and over TLS
# (syslog-tls.conf, RFC 5425, /log2), with syslog_app_name kong-test and
# syslog_facility local3.  The configs store the MSG of messages whose
# parsed APP-NAME and facility are those (anything else goes to
# <out>.other): every record lands there, each MSG is the JSON record.
. "$(dirname "$0")/lib.sh"
. "$REPO/test/collectors/collectors.sh"
require_tools nginx curl jq ss openssl
COLL=${1:?usage: collector_syslog.sh rsyslog|syslog-ng}
coll_require "$COLL"

N=10
PORT=$(free_port)
PORT2=$(free_port)
sh "$REPO/test/sink/gen-certs.sh" "$T/certs" >/dev/null 2>&1 || fail "gen-certs.sh failed"
coll_start "$COLL" syslog-tcp.conf c1 "$PORT"
coll_start "$COLL" syslog-tls.conf c2 "$PORT2"
SYSLOG="framing: syslog, syslog_app_name: $COLL_APP_NAME, syslog_facility: $COLL_FACILITY"
coll_gateway "host: 127.0.0.1, port: $PORT, $SYSLOG" \
  "host: 127.0.0.1, port: $PORT2, $SYSLOG, tls: true, tls_sni: localhost, tls_ca_file: $T/certs/ca.pem"

i=1
while [ $i -le $N ]; do
  coll_post "$i" $((i * 200))
  COLL_ROUTE=/log2 coll_post "$i" $((i * 200))
  i=$((i + 1))
done
for c in c1 c2; do
  wait_lines "$T/$c.out" $N 20
done
coll_wait_sent $N 10 ":$PORT"
coll_wait_sent $N 10 ":$PORT2"
for c in c1 c2; do
  [ ! -s "$T/$c.out.other" ] || fail "$c stored messages under another APP-NAME or facility: $(head -c 300 "$T/$c.out.other")"
  ok "$c: every message parsed with APP-NAME $COLL_APP_NAME and facility $COLL_FACILITY"
  coll_assert_json_lines "$T/$c.out" $N "$c: each stored MSG is a record"
  assert_eq "$(coll_ids "$T/$c.out" | tr '\n' ' ')" "$(seq 1 $N | sort | tr '\n' ' ')" "$c: ids 1..$N, each once"
  assert_jq "$T/$c.out" 'select(.request.body_size != (.request.body|length) or .request.body_truncated) | .request.uri' \
    "" "$c: bodies whole"
done
stop_gateway "$GW"
