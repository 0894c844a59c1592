#!/bin/sh
# bench/memory.sh: is the server's memory flat under steady load?  One command:
#
#   bench/memory.sh [--minutes 5] [--body 1024] [--concurrency 16] [--out docs/bench]
#
# kong-c-pluginserver (tcp-body-log) under kps-rpc-bench (closed loop) for
# --minutes, sampling VmRSS, VmHWM, live contexts and the sink queue every
# 10 s.  Output: <out>/memory.tsv and a summary line on stderr and in
# <out>/memory.txt.
. "$(dirname "$0")/lib.sh"

MINUTES=5; BODY=1024; CONC=16; OUT=$REPO/docs/bench
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --body) BODY=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
case "$MINUTES" in [1-9]|[1-5][0-9]|60) ;; *) die "--minutes must be 1..60" ;; esac

bench_init memory
require_tools jq
build_all
mkdir -p "$OUT"
start_collector c
"$KPS_SERVER" --plugin tcp-body-log --socket "$T/c.sock" --log-level notice </dev/null >"$T/c.log" 2>&1 &
SPID=$!; track_pid "$SPID"
wait_until 20 "the server" socket_accepts "$T/c.sock"
RSS0=$(status_kib "$SPID" VmRSS)
SECS=$((MINUTES * 60))
CFG="{\"host\":\"127.0.0.1\",\"port\":$COLLECTOR_PORT,\"max_body_size\":262144}"
timeout $((SECS + 120)) "$KPS_RPC_BENCH" --socket "$T/c.sock" --plugin tcp-body-log --config "$CFG" \
  --workers 2 --concurrency "$CONC" --body "$BODY" --warmup 0 --duration "$SECS" \
  --pid "$SPID" --count-file "$T/c.count" > "$T/drive.json" 2>"$T/drive.err" &
DPID=$!; track_pid "$DPID"

printf 'seconds\trss_kib\thwm_kib\tcontexts_live\tqueue_depth\trecords\n' > "$OUT/memory.tsv"
t=0
while [ $t -le "$SECS" ] && kill -0 "$DPID" 2>/dev/null; do
  st=$("$KPS_SERVER" --status --socket "$T/c.sock" 2>/dev/null || echo '{}')
  live=$(echo "$st" | jq '[.Plugins["tcp-body-log"].contexts.live] | add // 0' 2>/dev/null || echo -1)
  depth=$(echo "$st" | jq '[.Plugins["tcp-body-log"].sinks[]?.queue_depth] | add // 0' 2>/dev/null || echo -1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$(status_kib "$SPID" VmRSS)" "$(status_kib "$SPID" VmHWM)" \
    "$live" "$depth" "$(count_of "$T/c.count")" >> "$OUT/memory.tsv"
  sleep 10
  t=$((t + 10))
done
wait "$DPID" || true
sleep 5
RSS_IDLE=$(status_kib "$SPID" VmRSS)
{
  echo "memory.sh: $MINUTES min, body $BODY B, concurrency $CONC; RSS before load $RSS0 KiB, idle after $RSS_IDLE KiB"
  awk -F'\t' 'NR > 1 { n++; if (n == 1) first = $2; last = $2; if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2;
                 if ($1 >= 60 && (min60 == "" || $2 < min60)) min60 = $2; if ($1 >= 60 && $2 > max60) max60 = $2 }
       END { printf "samples %d: RSS first %d KiB, last %d KiB, min %d, max %d; after the first minute min %d max %d (spread %d KiB)\n",
             n, first, last, min, max, min60, max60, max60 - min60 }' "$OUT/memory.tsv"
  echo "driver: $(jq -c '{exchanges_total, exchanges_per_s, collector_ok, errors}' "$T/drive.json" 2>/dev/null)"
} | tee "$OUT/memory.txt" >&2
