#!/bin/sh
# Issue 11 (f): a real collector (rsyslog or syslog-ng, argument 1) with
# examples/collectors/<collector>/json-tcp.conf is stopped (SIGTERM) while
# records keep coming, and started again: every record id is stored
# (at least once: duplicates are allowed, the set of ids must be complete),
# every stored line is a whole record.
. "$(dirname "$0")/lib.sh"
. "$REPO/test/collectors/collectors.sh"
require_tools nginx curl jq ss
COLL=${1:?usage: collector_restart.sh rsyslog|syslog-ng}
coll_require "$COLL"

N=60
PORT=$(free_port)
coll_start "$COLL" json-tcp.conf c1 "$PORT"
coll_gateway "host: 127.0.0.1, port: $PORT"

# Traffic in the background: one request at a time, an answer code a line.
: > "$T/codes"
( i=1
  while [ $i -le $N ]; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -H 'Content-Type: text/plain' \
      --data-binary "record $i" "http://127.0.0.1:$GW_PORT/log/$i"
    i=$((i + 1))
  done >> "$T/codes" ) &
traffic=$!

wait_lines "$T/c1.out" 10 20
coll_stop c1 TERM
ok "$COLL stopped after $(lines "$T/c1.out") records stored, $(lines "$T/codes") answered"
down_at=$(lines "$T/codes")
wait_lines "$T/codes" $((down_at + 10)) 20
ok "10 more requests answered while $COLL was down"
coll_start "$COLL" json-tcp.conf c1 "$PORT"
wait "$traffic"
assert_eq "$(grep -c '^200$' "$T/codes")" $N "all $N requests answered 200"

complete() { [ "$(coll_ids "$T/c1.out" | sort -u | wc -l)" -eq $N ]; }
wait_until 30 "all $N ids in $T/c1.out" complete
coll_assert_json_lines "$T/c1.out" "$(lines "$T/c1.out")" "every stored line is a whole record"
assert_eq "$(coll_ids "$T/c1.out" | sort -un | tr '\n' ' ')" "$(seq 1 $N | tr '\n' ' ')" "ids 1..$N all stored"
ok "$(lines "$T/c1.out") lines for $N records ($(( $(lines "$T/c1.out") - N )) stored twice: at least once)"
sent_all() { coll_status; [ "$(coll_sink_jq '.records_sent >= '$N' and .queue_depth == 0')" = true ]; }
wait_until 10 "records_sent >= $N, queue empty" sent_all
ok "records_sent $(coll_sink_jq .records_sent) (replays count again), queue empty"
stop_gateway "$GW"
