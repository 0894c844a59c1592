#!/bin/sh
# Issue 11 (b): records larger than a real collector's stock line limit
# (rsyslog or syslog-ng, argument 1, examples/collectors/<collector>/json-tcp.conf).
# max_record_size is read from the README's collector table (the row of
# this collector, last cell), so the table is what this test runs.
#   /log:  max_record_size from the table; 20 records, every other one with
#          both bodies of 3/4 of it: every record is stored whole, on one
#          line, parsed; the big ones have their bodies cut
#          (body_truncated: true, body_size the original), the small ones not.
#   /log3: the same max_record_size with framing: syslog, to the stock
#          syslog source (syslog-tcp.conf): it counts the whole message,
#          which fits the collector's syslog limit: 4 big records stored
#          whole, parsed, cut.
#   /log2: control: max_record_size four times that, to a second instance:
#          each big record is split by the collector, none stored whole
#          (the limit is real).
. "$(dirname "$0")/lib.sh"
. "$REPO/test/collectors/collectors.sh"
require_tools nginx curl jq ss awk
COLL=${1:?usage: collector_line_limit.sh rsyslog|syslog-ng}
coll_require "$COLL"

M=$(coll_max_record_size "$COLL")
ok "README: max_record_size $M for $COLL"
N=20
BIG=$((M * 3 / 4))
SMALL=100
P1=$(free_port)
P2=$(free_port)
P3=$(free_port)
coll_start "$COLL" json-tcp.conf c1 "$P1"
coll_start "$COLL" json-tcp.conf c2 "$P2"
coll_start "$COLL" syslog-tcp.conf c3 "$P3"
coll_gateway "host: 127.0.0.1, port: $P1, max_record_size: $M, max_body_size: $((2 * M))" \
  "host: 127.0.0.1, port: $P2, max_record_size: $((4 * M)), max_body_size: $((2 * M))" \
  "host: 127.0.0.1, port: $P3, max_record_size: $M, max_body_size: $((2 * M)), framing: syslog,
   syslog_app_name: $COLL_APP_NAME, syslog_facility: $COLL_FACILITY"

i=1
while [ $i -le $N ]; do
  if [ $((i % 2)) = 0 ]; then coll_post "$i" $BIG; else coll_post "$i" $SMALL; fi
  i=$((i + 1))
done
C=4
i=1
while [ $i -le $C ]; do
  COLL_ROUTE=/log2 coll_post "c$i" $BIG
  COLL_ROUTE=/log3 coll_post "s$i" $BIG
  i=$((i + 1))
done

wait_lines "$T/c1.out" $N 20
coll_wait_sent $N 10 ":$P1"
coll_assert_json_lines "$T/c1.out" $N "$COLL stored every record whole"
assert_eq "$(coll_ids "$T/c1.out" | tr '\n' ' ')" "$(seq 1 $N | sort | tr '\n' ' ')" "ids 1..$N, each once"
longest=$(LC_ALL=C awk '{ if (length($0) > m) m = length($0) } END { print m + 1 }' "$T/c1.out")
[ "$longest" -le "$M" ] || fail "a stored line takes $longest bytes with its newline, over max_record_size $M"
ok "longest line $longest bytes with its newline (max_record_size $M)"
assert_jq "$T/c1.out" '(.request.uri | ltrimstr("/log/") | tonumber) as $i
  | select($i % 2 == 0)
  | select([.request.body_truncated, .response.body_truncated, .request.body_size, .response.body_size,
            (.request.body | test("^a*$")), (.response.body | test("^a*$")),
            (.request.body | length) < '$BIG', (.response.body | length) < '$BIG']
           != [true, true, '$BIG', '$BIG', true, true, true, true]) | .request.uri' \
  "" "big records: both bodies cut to fit, body_truncated true, body_size $BIG"
assert_jq "$T/c1.out" '(.request.uri | ltrimstr("/log/") | tonumber) as $i
  | select($i % 2 == 1)
  | select([.request.body_truncated, .response.body_truncated, .request.body, .response.body]
           != [false, false, ("a" * '$SMALL'), ("a" * '$SMALL')]) | .request.uri' \
  "" "small records whole"

# framing: syslog, the same max_record_size.
coll_wait_sent $C 10 ":$P3"
wait_lines "$T/c3.out" $C 10
[ ! -s "$T/c3.out.other" ] || fail "syslog: messages not parsed as ours: $(head -c 300 "$T/c3.out.other")"
coll_assert_json_lines "$T/c3.out" $C "syslog: every big record stored whole"
assert_jq "$T/c3.out" 'select([.request.body_truncated, .response.body_truncated, .request.body_size, .response.body_size]
           != [true, true, '$BIG', '$BIG']) | .request.uri' "" "syslog: bodies cut to fit, body_size $BIG"

# Control: records over the collector's limit.  Each is split in two.
coll_wait_sent $C 10 ":$P2"
wait_lines "$T/c2.out" $((2 * C)) 10
assert_eq "$(lines "$T/c2.out")" $((2 * C)) "control: $C records over the limit stored as $((2 * C)) pieces"
assert_eq "$(jq -R 'fromjson? | objects | .request.uri' "$T/c2.out" | wc -l | tr -d ' ')" 0 \
  "control: no piece parses as a record"
stop_gateway "$GW"
