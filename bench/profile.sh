#!/bin/sh
# bench/profile.sh: where kong-c-pluginserver spends its CPU under the
# protocol-level load.  One command:
#
#   bench/profile.sh [--body 1024] [--concurrency 16] [--seconds 10] [--out docs/bench]
#   bench/profile.sh --gateway [--body 1024] [--out docs/bench]
#
# Runs the server (RelWithDebInfo) and a collector, drives it with
# kps-rpc-bench (tcp-body-log, closed loop) and records the server with
# `perf record -e cpu-clock` (flat, then with DWARF call graphs for the
# inclusive view).  Without a usable perf it runs the server under
# `valgrind --tool=callgrind` instead (much slower: a fixed number of
# exchanges) and reports callgrind_annotate's top functions.
# Output: <out>/profile-<body>-c<conc>.txt
#
# --gateway: the other side.  Runs bench/e2e/run.sh with only the
# tcp-body-log mode (one 20 s run) and records the whole machine with perf
# for 8 s in the middle of it: CPU by process, and the nginx workers' time by
# shared object and function.  Output: <out>/profile-gateway-<body>.txt
. "$(dirname "$0")/lib.sh"

BODY=1024; CONC=16; SECS=10; OUT=$REPO/docs/bench; GATEWAY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --gateway) GATEWAY=1; shift ;;
    --body) BODY=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
case "$SECS" in [1-9]|[1-5][0-9]|60) ;; *) die "--seconds must be 1..60" ;; esac

bench_init profile
build_all
mkdir -p "$OUT"

if [ "$GATEWAY" = 1 ]; then
  REPORT=$OUT/profile-gateway-$BODY.txt
  perf record -e cpu-clock -o "$T/probe.data" -- true >/dev/null 2>&1 || die "perf is not usable here"
  "$BENCH/e2e/run.sh" --modes c --rounds 1 --duration 20 --bodies "$BODY" --out "$T/e2e" >"$T/e2e.log" 2>&1 &
  EPID=$!; track_pid "$EPID"
  wait_until 120 "the e2e run to reach its measured run" grep -q 'round 1 of 1' "$T/e2e.log"
  sleep 6
  perf record -a -e cpu-clock -F 999 -o "$T/gw.data" -- sleep 8 >/dev/null 2>"$T/perf.err"
  wait "$EPID" || die "the e2e run failed: $(tail -n 3 "$T/e2e.log")"
  {
    echo "# gateway profile: tcp-body-log mode, body $BODY B, wrk 16 connections (bench/profile.sh --gateway)"
    machine_info | sed 's/^/# /'
    echo "# e2e run: $(grep '^c' "$T/e2e.log" | tail -n 1)"
    echo "# perf record -a -e cpu-clock -F 999 -- sleep 8"
    echo
    echo "## Whole machine, by process"
    perf report -i "$T/gw.data" --stdio --no-children --sort comm 2>/dev/null | grep -v '^#' | grep '%' | head -n 15
    echo
    echo "## By process and shared object (top 25)"
    perf report -i "$T/gw.data" --stdio --no-children --sort comm,dso 2>/dev/null | grep -v '^#' | grep '%' | head -n 25
    echo
    echo "## nginx workers, by function (top 30; LuaJIT interpreter frames have no symbols)"
    perf report -i "$T/gw.data" --stdio --no-children --comm nginx --sort dso,sym 2>/dev/null | grep -v '^#' | grep '%' | head -n 30
  } > "$REPORT"
  say "profile: $REPORT"
  exit 0
fi
REPORT=$OUT/profile-$BODY-c$CONC.txt
start_collector c
CFG="{\"host\":\"127.0.0.1\",\"port\":$COLLECTOR_PORT,\"max_body_size\":262144,\"queue_max_bytes\":268435456}"

use_perf=0
if command -v perf >/dev/null 2>&1 && perf record -e cpu-clock -o "$T/probe.data" -- true >/dev/null 2>&1; then
  use_perf=1
fi

drive() { # seconds [extra args]
  _s=$1; shift
  timeout $((_s + 120)) "$KPS_RPC_BENCH" --socket "$T/c.sock" --plugin tcp-body-log --config "$CFG" \
    --workers 2 --concurrency "$CONC" --body "$BODY" --warmup 2 --duration "$_s" \
    --pid "$SPID" --count-file "$T/c.count" "$@"
}

{
  echo "# kong-c-pluginserver profile: tcp-body-log, body $BODY B, concurrency $CONC (bench/profile.sh)"
  machine_info | sed 's/^/# /'
} > "$REPORT"

if [ "$use_perf" = 1 ]; then
  "$KPS_SERVER" --plugin tcp-body-log --socket "$T/c.sock" --log-level notice </dev/null >"$T/c.log" 2>&1 &
  SPID=$!; track_pid "$SPID"
  wait_until 20 "the server" socket_accepts "$T/c.sock"

  say "perf, flat: ${SECS}s"
  drive $((SECS + 2)) > "$T/drive1.json" &
  DPID=$!; track_pid "$DPID"
  sleep 3
  perf record -e cpu-clock -F 2999 -p "$SPID" -o "$T/flat.data" -- sleep "$SECS" >/dev/null 2>"$T/perf1.err"
  wait "$DPID" || true
  say "perf, DWARF call graphs: 4 s"
  drive 6 > "$T/drive2.json" &
  DPID=$!; track_pid "$DPID"
  sleep 3
  perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$SPID" -o "$T/graph.data" -- sleep 4 \
    >/dev/null 2>"$T/perf2.err" || true
  wait "$DPID" || true
  {
    echo "# driver (flat run): $(jq -c '{exchanges_per_s, rpcs_per_exchange, p50_us, p99_us, server_cpu_us_per_exchange, collector_ok}' "$T/drive1.json")"
    echo "# perf record -e cpu-clock -F 2999 -p <server> -- sleep $SECS; perf report --no-children"
    echo
    echo "## Self time by shared object"
    perf report -i "$T/flat.data" --stdio --no-children --sort dso 2>/dev/null | grep -v '^#' | grep '%' | head -n 12
    echo
    echo "## Self time by function (top 40)"
    perf report -i "$T/flat.data" --stdio --no-children --sort dso,sym 2>/dev/null | grep -v '^#' | grep '%' | head -n 40
    echo
    echo "## Inclusive time (children), functions of the server and its libraries (top 45)"
    perf report -i "$T/graph.data" --stdio --children --sort sym -g none 2>/dev/null | grep -v '^#' | grep '%' |
      grep -v '\] 0x[0-9a-f]*$' | head -n 45
  } >> "$REPORT"
else
  require_tools valgrind callgrind_annotate
  say "perf unusable: callgrind (20000 exchanges)"
  valgrind --tool=callgrind --callgrind-out-file="$T/callgrind.out" \
    "$KPS_SERVER" --plugin tcp-body-log --socket "$T/c.sock" --log-level notice </dev/null >"$T/c.log" 2>&1 &
  SPID=$!; track_pid "$SPID"
  wait_until 60 "the server under valgrind" socket_accepts "$T/c.sock"
  drive 600 --max-exchanges 20000 > "$T/drive1.json" || true
  kill -TERM "$SPID"; _n=0
  while kill -0 "$SPID" 2>/dev/null && [ $_n -lt 300 ]; do sleep 0.1; _n=$((_n + 1)); done
  {
    echo "# valgrind --tool=callgrind, 20000 exchanges; callgrind_annotate"
    callgrind_annotate "$T/callgrind.out" 2>/dev/null | head -n 60
  } >> "$REPORT"
fi
say "profile: $REPORT"
