#!/bin/sh
# Issue 11 (h): failover between two processes of a real collector (rsyslog
# or syslog-ng, argument 1), both with examples/collectors/<collector>/json-tcp.conf:
# hosts ["127.0.0.1:P1", "127.0.0.1:P2"], balance failover.  The first
# carries the traffic until it is killed (SIGKILL) mid-stream; the second
# takes over; every record id ends up in one of the two outputs.
. "$(dirname "$0")/lib.sh"
. "$REPO/test/collectors/collectors.sh"
require_tools nginx curl jq ss
COLL=${1:?usage: collector_failover.sh rsyslog|syslog-ng}
coll_require "$COLL"

N=60
P1=$(free_port)
P2=$(free_port)
coll_start "$COLL" json-tcp.conf c1 "$P1"
coll_start "$COLL" json-tcp.conf c2 "$P2"
coll_gateway "hosts: [\"127.0.0.1:$P1\", \"127.0.0.1:$P2\"], balance: failover"

: > "$T/codes"
( i=1
  while [ $i -le $N ]; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -H 'Content-Type: text/plain' \
      --data-binary "record $i" "http://127.0.0.1:$GW_PORT/log/$i"
    i=$((i + 1))
  done >> "$T/codes" ) &
traffic=$!

wait_lines "$T/c1.out" 10 20
assert_eq "$(lines "$T/c2.out")" 0 "failover: nothing to the second while the first is up"
coll_stop c1 KILL
killed_at=$(lines "$T/codes")
ok "first $COLL killed after $(lines "$T/c1.out") records stored, $killed_at answered"
wait "$traffic"
assert_eq "$(grep -c '^200$' "$T/codes")" $N "all $N requests answered 200"

complete() { [ "$(coll_ids "$T/c1.out" "$T/c2.out" | sort -u | wc -l)" -eq $N ]; }
wait_until 30 "all $N ids in the two outputs" complete
for c in c1 c2; do
  coll_assert_json_lines "$T/$c.out" "$(lines "$T/$c.out")" "$c: every stored line is a whole record"
done
assert_eq "$(coll_ids "$T/c1.out" "$T/c2.out" | sort -un | tr '\n' ' ')" "$(seq 1 $N | tr '\n' ' ')" \
  "ids 1..$N all stored, in one output or the other"
last=$(coll_ids "$T/c2.out" | sort -n | tail -n 1)
assert_eq "$last" $N "the second took over: it holds the last record"
ok "c1 $(lines "$T/c1.out") lines, c2 $(lines "$T/c2.out") lines for $N records"
sent_all() { coll_status; [ "$(coll_sink_jq '.records_sent >= '$N' and .queue_depth == 0')" = true ]; }
wait_until 10 "records_sent >= $N, queue empty" sent_all
assert_eq "$(coll_sink_jq ".endpoints[\"127.0.0.1:$P2\"].records_sent > 0")" true "the second endpoint counts records sent"
ok "records_sent $(coll_sink_jq .records_sent) (replays count again), queue empty"
stop_gateway "$GW"
