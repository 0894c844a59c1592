#!/bin/sh
# Issue 11 (a): tcp-body-log into a real collector (rsyslog or syslog-ng,
# argument 1) on its stock settings over plain TCP, with
# examples/collectors/<collector>/json-tcp.conf: 30 records of mixed sizes,
# each stored once, whole, on its own line; every line parses as JSON; the
# ids are complete and unique; the bodies are the ones sent.
. "$(dirname "$0")/lib.sh"
. "$REPO/test/collectors/collectors.sh"
require_tools nginx curl jq ss
COLL=${1:?usage: collector_intact.sh rsyslog|syslog-ng}
coll_require "$COLL"

N=30
PORT=$(free_port)
coll_start "$COLL" json-tcp.conf c1 "$PORT"
coll_gateway "host: 127.0.0.1, port: $PORT"

# Sizes 0..2000 bytes: each record (both bodies) stays under every stock
# line limit (rsyslog's 8096 bytes is the smallest).
i=1
while [ $i -le $N ]; do
  coll_post "$i" $(( (i * 397) % 2001 ))
  i=$((i + 1))
done
wait_lines "$T/c1.out" $N 20
coll_wait_sent $N 10
coll_assert_json_lines "$T/c1.out" $N "$COLL stored every record"
assert_eq "$(coll_ids "$T/c1.out" | tr '\n' ' ')" "$(seq 1 $N | sort | tr '\n' ' ')" "ids 1..$N, each once"
assert_jq "$T/c1.out" '[.request.uri, .request.body_size, (.request.body|length), .response.body_size,
    (.request.body == .response.body), (.request.body|test("^a*$")), .request.body_truncated]
  | select(.[1] != ((.[0]|ltrimstr("/log/")|tonumber) * 397 % 2001) or .[1] != .[2] or .[3] != .[1]
           or .[4] != true or .[5] != true or .[6] != false) | .[0]' "" "every body whole, the size sent"
stop_gateway "$GW"
