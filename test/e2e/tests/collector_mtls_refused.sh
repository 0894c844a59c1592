#!/bin/sh
# Issue 11 (e): a real collector (rsyslog or syslog-ng, argument 1) with
# examples/collectors/<collector>/json-mtls.conf refuses clients without a
# certificate of its CA.  Two instances: /log presents no client
# certificate, /log2 a self-signed one.  Over 6 s each sink retries with
# its backoff (100 ms doubling: a handful of attempts, not hundreds), sends
# nothing, counts the refusals as TLS failures (tls_unconfirmed where the
# refusal came after the handshake, TLS 1.3) and keeps its records queued.
# A SIGTERM to the server then drops them, counted and logged; the
# collectors stored none.  No storm, no silent loss.
. "$(dirname "$0")/lib.sh"
. "$REPO/test/collectors/collectors.sh"
require_tools nginx curl jq ss openssl
COLL=${1:?usage: collector_mtls_refused.sh rsyslog|syslog-ng}
coll_require "$COLL"

N=5
PORT=$(free_port)
PORT2=$(free_port)
sh "$REPO/test/sink/gen-certs.sh" "$T/certs" >/dev/null 2>&1 || fail "gen-certs.sh failed"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=kps-untrusted-client -keyout "$T/certs/untrusted.key" -out "$T/certs/untrusted.pem" 2>/dev/null ||
  fail "openssl: no self-signed client certificate"
coll_start "$COLL" json-mtls.conf c1 "$PORT"
coll_start "$COLL" json-mtls.conf c2 "$PORT2"
TLS="host: 127.0.0.1, tls: true, tls_sni: localhost, tls_ca_file: $T/certs/ca.pem"
coll_gateway "$TLS, port: $PORT" \
  "$TLS, port: $PORT2, tls_client_cert: $T/certs/untrusted.pem, tls_client_key: $T/certs/untrusted.key"

start=$(date +%s%N)
i=1
while [ $i -le $N ]; do
  coll_post "$i" 100
  COLL_ROUTE=/log2 coll_post "u$i" 100
  i=$((i + 1))
done

refused() { # port
  coll_status
  [ "$(coll_sink_jq .tls_failures ":$1")" -ge 3 ]
}
wait_until 10 "3 refusals by the collector on $PORT" refused "$PORT"
wait_until 10 "3 refusals by the collector on $PORT2" refused "$PORT2"
# The backoff bound needs a window of time: the rest of the 6 s.
left=$(( 6000 - ($(date +%s%N) - start) / 1000000 ))
[ "$left" -le 0 ] || sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
coll_status
for p in "$PORT" "$PORT2"; do
  st=$(coll_sink_jq '[.records_sent, .queue_depth, .connects, .tls_failures, .reconnects + 1, .tls_unconfirmed] | @csv' ":$p")
  echo "sink :$p records_sent,queue_depth,connects,tls_failures,attempts,tls_unconfirmed = $st"
  IFS=, read -r sent depth conns fails attempts unconf <<EOS
$st
EOS
  assert_eq "$sent,$depth,$conns" "0,$N,0" "sink :$p: nothing sent, its $N records queued, no connection accepted"
  { [ "$fails" -ge 3 ] && [ "$fails" -le 8 ]; } || fail "sink :$p: $fails TLS failures in 6 s (the backoff allows 3..8)"
  [ "$attempts" -le 8 ] || fail "sink :$p: $attempts connection attempts in 6 s (the backoff allows 8 at most)"
  ok "sink :$p: $fails refusals in $attempts attempts over 6 s (backoff, no storm)"
  [ "$unconf" -gt 0 ] 2>/dev/null || fail "sink :$p: tls_unconfirmed is [$unconf], expected > 0"
  ok "sink :$p: tls_unconfirmed = $unconf"
done

# SIGTERM: the records are dropped, counted and logged, nothing silently.
pid=$(server_pid tcp-body-log)
kill -TERM "$pid"
wait_until 10 "server $pid to exit" sh -c "! kill -0 $pid 2>/dev/null"
for p in "$PORT" "$PORT2"; do
  wait_grep 10 "$GW/logs/error.log" "sink tls://127.0.0.1:$p: dropping $N undelivered records at shutdown" \
    "sink :$p: the server logged its $N records dropped at shutdown"
done
assert_eq "$(lines "$T/c1.out"),$(lines "$T/c2.out")" "0,0" "the collectors stored nothing"
stop_gateway "$GW"
