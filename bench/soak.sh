#!/bin/sh
# bench/soak.sh: the soak test of issue 6 (not run by CI: it takes 10+
# minutes).  Loopback only.
#
#   bench/soak.sh [--duration 600] [--restart-every 60] [--rss-every 10]
#                    [--connections 4] [--delay-ms 4] [--body 1024] [--out DIR]
#
# wrk POSTs --body bytes (text/plain) to /soak/?n=<thread>-<counter> through
# the test gateway (test/e2e: nginx + Lua driving the plugin server as Kong
# 3.9 does, 2 workers) for --duration seconds; each connection waits
# --delay-ms between requests.  tcp-body-log logs every exchange to
# kps-collector, which is restarted (SIGTERM, start again on the same port)
# every --restart-every seconds.  Every --rss-every seconds the server's
# VmRSS is sampled.
#
# At the end, once the queue has drained:
#   sent      requests the gateway served on /soak (its access log)
#   received  records the collectors wrote, by request (n=...)
#   dropped   the records the server counted as dropped (--status: dropped.*,
#             serialize_invalid, serialize_missing)
# and the run passes when every request served is either received or
# counted as dropped (missing == dropped), duplicates are at most the
# records the server counted as re-sent, the server never restarted, and
# RSS is flat after warm-up (the first 20 % of the run): its baseline (the
# lowest sample of each minute) and its idle value after the drain stay
# within max(2 MiB, 5 %) of the warm-up value.  Peaks while the collector
# is down are the queue at work and are reported, not judged.
# Results: <out>/soak.txt, rss.tsv, status.json.
# Environment: KPS_SERVER, KPS_COLLECTOR (default: build-soak/ in the repo,
# built when missing).  Run it niced on a shared machine: nice -n 10 ...
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
E2E=$ROOT/test/e2e
DURATION=600; RESTART=60; RSS_EVERY=10; CONN=4; DELAY=4; BODY=1024; OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --restart-every) RESTART=$2; shift 2 ;;
    --rss-every) RSS_EVERY=$2; shift 2 ;;
    --connections) CONN=$2; shift 2 ;;
    --delay-ms) DELAY=$2; shift 2 ;;
    --body) BODY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for v in "$DURATION" "$RESTART" "$RSS_EVERY" "$CONN" "$DELAY" "$BODY"; do
  case "$v" in ''|*[!0-9]*) echo "options take whole numbers" >&2; exit 2 ;; esac
done
[ "$DURATION" -ge 30 ] && [ "$DURATION" -le 7200 ] || { echo "--duration: 30..7200 s" >&2; exit 2; }
[ "$CONN" -ge 1 ] && [ "$CONN" -le 64 ] || { echo "--connections: 1..64" >&2; exit 2; }

for t in wrk nginx curl jq ss; do
  command -v "$t" >/dev/null 2>&1 || { echo "missing tool: $t" >&2; exit 1; }
done
if [ -z "${KPS_SERVER:-}" ] || [ -z "${KPS_COLLECTOR:-}" ]; then
  cmake -S "$ROOT" -B "$ROOT/build-soak" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$ROOT/build-soak" -j"$(nproc)" --target kong-c-pluginserver kps-collector >/dev/null
  KPS_SERVER=${KPS_SERVER:-$ROOT/build-soak/src/kong-c-pluginserver}
  KPS_COLLECTOR=${KPS_COLLECTOR:-$ROOT/build-soak/test/tools/kps-collector}
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/kps-soak.XXXXXX")
OUT=${OUT:-$T}
mkdir -p "$OUT"
GW=$T/gw
COL_PID=""
GREP_PID=""
WRK_PID=""
cleanup() {
  rc=$?
  set +e
  [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null
  [ -n "$COL_PID" ] && kill "$COL_PID" 2>/dev/null
  [ -n "$GREP_PID" ] && kill "$GREP_PID" 2>/dev/null
  "$E2E/gateway.sh" stop "$GW" >/dev/null 2>&1
  "$E2E/upstream.sh" stop "$T/up" >/dev/null 2>&1
  [ "$rc" = 0 ] || echo "soak: failed (rc $rc); files in $T" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a random unused loopback port below the ephemeral range (bounded tries)
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
  i=0
  while [ $i -lt 50 ]; do
    p=$(( 10000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % (lo - 10000) ))
    [ -z "$(ss -Htan "sport = :$p")" ] && { echo "$p"; return 0; }
    i=$((i + 1))
  done
  echo "no free port" >&2; exit 1
}
wait_until() { # seconds what cmd...
  secs=$1; what=$2; shift 2
  end=$(( $(date +%s) + secs ))
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || { echo "timed out waiting for $what" >&2; exit 1; }
    sleep 0.1
  done
}
listening() { ss -Hltn "sport = :$1" | grep -q .; }

GW_PORT=$(free_port); UP_PORT=$(free_port); COL_PORT=$(free_port)
"$E2E/upstream.sh" start "$T/up" --port "$UP_PORT" >/dev/null

# The collector writes its lines into a FIFO; grep keeps only each record's
# request number (n=...).  Both are started and stopped by pid.
ncol=0
GREP_PID=""
mkfifo "$T/lines.fifo"
start_collector() {
  ncol=$((ncol + 1))
  grep -o '"n":"[0-9]*-[0-9]*"' < "$T/lines.fifo" >> "$T/received.ids" &
  GREP_PID=$!
  "$KPS_COLLECTOR" --listen "127.0.0.1:$COL_PORT" --out "$T/lines.fifo" --quiet </dev/null &
  COL_PID=$!
  wait_until 10 "collector on $COL_PORT" listening "$COL_PORT"
}
stop_collector() { # SIGTERM: the collector drains what was acknowledged, then exits
  kill -TERM "$COL_PID" 2>/dev/null || true
  wait "$COL_PID" 2>/dev/null || true
  wait "$GREP_PID" 2>/dev/null || true
  COL_PID=""
}
: > "$T/received.ids"
start_collector

mkdir -p "$GW"
cat > "$T/kong.conf" <<CONF
plugins = bundled,tcp-body-log
pluginserver_names = tcp-body-log
pluginserver_tcp_body_log_socket = $GW/tcp-body-log.socket
pluginserver_tcp_body_log_start_cmd = $KPS_SERVER --plugin tcp-body-log -kong-prefix $GW --log-level notice
pluginserver_tcp_body_log_query_cmd = $KPS_SERVER --plugin tcp-body-log -dump
log_level = notice
CONF
cat > "$T/kong.yml" <<YML
_format_version: "3.0"
services:
  - name: soak
    url: http://127.0.0.1:$UP_PORT/echo
    routes: [{ name: soak, paths: ["/soak"] }]
    plugins:
      - name: tcp-body-log
        config: { host: 127.0.0.1, port: $COL_PORT, redact_json_fields: ["password"] }
YML
"$E2E/gateway.sh" start "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" \
  --kong-version 3.9 --workers 2 --log-level notice >/dev/null
curl -sf -o /dev/null -X POST --data-binary warmup "http://127.0.0.1:$GW_PORT/soak/?n=0-0"
PID=$(cat "$GW/pluginservers/tcp-body-log.pid")
status() { "$KPS_SERVER" --status --socket "$GW/tcp-body-log.socket"; }

cat > "$T/soak.lua" <<'LUA'
local n, id = 0, 0
local counter = 0
function setup(thread) counter = counter + 1; thread:set("tid", counter) end
function init(args)
  local unit = "abcdefghijklmnopqrstuvwxyz0123456789"
  body = string.rep(unit, math.ceil(tonumber(os.getenv("SOAK_BODY")) / #unit)):sub(1, tonumber(os.getenv("SOAK_BODY")))
  delay_ms = tonumber(os.getenv("SOAK_DELAY"))
end
function request()
  n = n + 1
  return wrk.format("POST", "/soak/?n=" .. tid .. "-" .. n, {["Content-Type"] = "text/plain"}, body)
end
function delay() return delay_ms end
function done(summary, latency, requests)
  io.write(string.format("WRK requests=%d errors_connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
LUA
THREADS=2; [ "$CONN" -lt 2 ] && THREADS=1
SOAK_BODY=$BODY SOAK_DELAY=$DELAY wrk -t"$THREADS" -c"$CONN" -d"${DURATION}s" --timeout 10s \
  -s "$T/soak.lua" "http://127.0.0.1:$GW_PORT/" > "$T/wrk.out" 2>&1 &
WRK_PID=$!

echo "seconds	rss_kib	queue_depth	records_sent" > "$OUT/rss.tsv"
start=$(date +%s); next_rss=$start; next_restart=$((start + RESTART)); restarts=0
while kill -0 "$WRK_PID" 2>/dev/null; do
  now=$(date +%s)
  if [ "$now" -ge "$next_rss" ]; then
    [ "$(cat "$GW/pluginservers/tcp-body-log.pid")" = "$PID" ] || { echo "the server restarted" >&2; exit 1; }
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")
    st=$(status)
    q=$(echo "$st" | jq '[.Plugins."tcp-body-log".sinks[]?.queue_depth] | add // 0')
    sent=$(echo "$st" | jq '[.Plugins."tcp-body-log".sinks[]?.records_sent] | add // 0')
    printf '%s\t%s\t%s\t%s\n' "$((now - start))" "$rss" "$q" "$sent" >> "$OUT/rss.tsv"
    next_rss=$((next_rss + RSS_EVERY))
  fi
  if [ "$now" -ge "$next_restart" ] && [ $((now - start)) -lt "$DURATION" ]; then
    stop_collector
    sleep 0.5            # down for a moment: records wait in the queue
    start_collector
    restarts=$((restarts + 1))
    next_restart=$((next_restart + RESTART))
  fi
  sleep 1
done
wait "$WRK_PID" || true
WRK_PID=""

# Drain: every record the server holds reaches the collector.
drained() { [ "$(status | jq '[.Plugins."tcp-body-log".sinks[]?.queue_depth] | add // 0')" = 0 ]; }
wait_until 120 "the queue to drain" drained
sleep 3 # the housekeeping tick hands freed heap back once a second
rss_idle=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")
status > "$OUT/status.json"
stop_collector

grep -o 'n=[0-9]*-[0-9]*' "$GW/logs/access.log" | sed 's/^n=//' | sort > "$T/sent.ids"
sed 's/"n":"\([0-9-]*\)"/\1/' "$T/received.ids" | sort > "$T/received.sorted"
sort -u "$T/received.sorted" > "$T/received.unique"
sent=$(wc -l < "$T/sent.ids")
received=$(wc -l < "$T/received.sorted")
unique=$(wc -l < "$T/received.unique")
missing=$(comm -23 "$T/sent.ids" "$T/received.unique" | wc -l)
unknown=$(comm -13 "$T/sent.ids" "$T/received.unique" | wc -l)
P='.Plugins."tcp-body-log"'
dropped=$(jq "[$P.sinks[]?.dropped[]] + [$P.serialize_invalid, $P.serialize_missing] | add // 0" "$OUT/status.json")
resent=$(jq "[$P.sinks[]?.records_resent] | add // 0" "$OUT/status.json")
reconnects=$(jq "[$P.sinks[]?.reconnects] | add // 0" "$OUT/status.json")
served_200=$(grep -c '"POST /soak/?n=[0-9]*-[0-9]* HTTP/1.1" 200 ' "$GW/logs/access.log" || true)

# RSS: the first 20 % is warm-up.  Flat means no creep: the baseline (the
# lowest sample of each minute; a collector outage legitimately holds the
# queued records for a moment, bounded by queue_max_bytes) does not grow,
# and once idle the server is back within the allowance of warm-up.
samples=$(($(wc -l < "$OUT/rss.tsv") - 1))
warm=$(awk -F'\t' -v d="$DURATION" 'NR > 1 && $1 >= d / 5 { print $2; exit }' "$OUT/rss.tsv")
last=$(awk -F'\t' 'NR > 1 { v = $2 } END { print v }' "$OUT/rss.tsv")
peak=$(awk -F'\t' -v d="$DURATION" 'NR > 1 && $1 >= d / 5 && $2 > m { m = $2 } END { print m + 0 }' "$OUT/rss.tsv")
first=$(awk -F'\t' 'NR == 2 { print $2 }' "$OUT/rss.tsv")
allowed=$(awk -v w="$warm" 'BEGIN { a = w * 0.05; if (a < 2048) a = 2048; print int(a) }')
# per-minute minimums after warm-up: "minute min" lines
awk -F'\t' -v d="$DURATION" 'NR > 1 && $1 >= d / 5 { m = int($1 / 60); if (!(m in lo) || $2 < lo[m]) lo[m] = $2 }
  END { for (m in lo) print m, lo[m] }' "$OUT/rss.tsv" | sort -n > "$T/minmins"
base_first=$(head -n 1 "$T/minmins" | cut -d' ' -f2)
base_last=$(tail -n 1 "$T/minmins" | cut -d' ' -f2)
creep=$((base_last - base_first))
idle_growth=$((rss_idle - warm))
heap_trims=$(jq '.Counters.heap_trims // 0' "$OUT/status.json")

{
  echo "soak: $(date -u +%Y-%m-%dT%H:%MZ), ${DURATION} s, $CONN connections, ${DELAY} ms between requests, ${BODY}-byte bodies"
  grep '^WRK' "$T/wrk.out" || true
  echo "collector restarts: $restarts (every ${RESTART} s); sink reconnects: $reconnects"
  echo "sent (gateway access log): $sent ($served_200 with status 200)"
  echo "received: $received lines, $unique distinct requests, $((received - unique)) duplicates (server re-sent $resent)"
  echo "missing: $missing; counted as dropped by the server: $dropped; received but never sent: $unknown"
  echo "RSS (KiB): start $first, after warm-up $warm, peak after warm-up $peak, last sample under load $last, idle after the drain $rss_idle; $samples samples"
  echo "RSS baseline (lowest sample per minute after warm-up): $(cut -d' ' -f2 "$T/minmins" | paste -sd' ' -); creep $creep, idle vs warm-up $idle_growth (allowed $allowed each); heap trims $heap_trims"
} > "$OUT/soak.txt"
cat "$OUT/soak.txt"

ok=1
[ "$missing" = "$dropped" ] || { echo "FAIL: $missing records missing, $dropped counted as dropped"; ok=0; }
[ "$unknown" = 0 ] || { echo "FAIL: $unknown records the gateway never served"; ok=0; }
[ $((received - unique)) -le "$resent" ] || { echo "FAIL: more duplicates than re-sent records"; ok=0; }
[ "$sent" -gt 0 ] && [ "$served_200" = "$sent" ] || { echo "FAIL: requests failed at the gateway"; ok=0; }
[ "$creep" -le "$allowed" ] || { echo "FAIL: the RSS baseline grew by $creep KiB after warm-up"; ok=0; }
[ "$idle_growth" -le "$allowed" ] || { echo "FAIL: idle RSS $rss_idle KiB, $idle_growth over warm-up"; ok=0; }
[ "$ok" = 1 ] && echo "soak: PASS" || exit 1
