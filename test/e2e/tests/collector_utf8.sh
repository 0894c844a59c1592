#!/bin/sh
# Issue 11 (i): a request whose query string (?q=caf%E9) and header
# (X-Latin: caf<0xE9>, the raw byte) are Latin-1, not UTF-8, logged into a
# real collector (rsyslog or syslog-ng, argument 1) with
# examples/collectors/<collector>/json-tcp.conf: the stored line is valid
# JSON (jq, and python3's json.loads when python3 is there) and holds
# "caf\ufffd" (U+FFFD REPLACEMENT CHARACTER) for both.
. "$(dirname "$0")/lib.sh"
. "$REPO/test/collectors/collectors.sh"
require_tools nginx curl jq ss
COLL=${1:?usage: collector_utf8.sh rsyslog|syslog-ng}
coll_require "$COLL"

PORT=$(free_port)
coll_start "$COLL" json-tcp.conf c1 "$PORT"
coll_gateway "host: 127.0.0.1, port: $PORT"

coll_post "latin1?q=caf%E9" 5 -H "$(printf 'X-Latin: caf\351')"
coll_post "ascii" 5
wait_lines "$T/c1.out" 2 20
coll_assert_json_lines "$T/c1.out" 2 "$COLL stored both records"
# The line itself (Kong's JSON writes "/" as "\/", so select with jq).
n=$(jq -r '.request.uri' "$T/c1.out" | grep -n '^/log/latin1?' | cut -d: -f1)
[ -n "$n" ] || fail "no record of /log/latin1 in $T/c1.out"
sed -n "${n}p" "$T/c1.out" > "$T/latin1.json"
assert_jq "$T/latin1.json" '[.request.querystring.q, .request.headers["x-latin"]] == ["caf\ufffd", "caf\ufffd"]' \
  true "query arg and header hold caf + U+FFFD"
# The bytes on disk are UTF-8: U+FFFD as EF BF BD or as the \ufffd escape,
# never the raw E9.
if LC_ALL=C grep -q "$(printf 'caf\351')" "$T/latin1.json"; then fail "raw byte E9 stored"; fi
ok "no raw E9 byte stored"
if command -v python3 >/dev/null 2>&1; then
  python3 -c '
import json, sys
with open(sys.argv[1], "rb") as f:
    r = json.loads(f.read().decode("utf-8", "strict"))
assert r["request"]["querystring"]["q"] == "caf\ufffd", r["request"]["querystring"]
assert r["request"]["headers"]["x-latin"] == "caf\ufffd", r["request"]["headers"]
' "$T/latin1.json" || fail "python3 json.loads: the stored line is not the expected JSON"
  ok "python3 json.loads (strict UTF-8) reads the same"
fi
stop_gateway "$GW"
