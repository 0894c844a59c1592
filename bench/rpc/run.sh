#!/bin/sh
# bench/rpc/run.sh: the protocol-level benchmark.  One command:
#
#   bench/rpc/run.sh [--rounds 3] [--duration 5] [--warmup 1] [--quick]
#                    [--bodies "0 1024 16384 262144"] [--concurrency "1 16 64"]
#                    [--out docs/bench]
#
# Starts, on Unix sockets and 127.0.0.1 only: kong-c-pluginserver serving
# tcp-body-log, Kong's JS plugin server (kong-pdk) serving the JS port
# js-tcp-body-log and, for reference, the peers' 9-RPC bodylog; one
# kps-collector per server.  Then, for every round, body size and
# concurrency, runs bench/rpc's driver (kps-rpc-bench, N Kong workers) against
# ours and the JS port back to back, alternating which goes first; the 9-RPC
# bodylog at concurrency 16; and a paced run (1 KiB, concurrency 16, a fixed
# rate both servers sustain) for per-RPC latency below saturation.  Every run
# checks that its collector received exactly one line per exchange.
#
# Output: <out>/rpc-results.jsonl (one driver JSON object per run, plus
# "memory" and "machine" lines), then bench/report.sh renders the tables and
# the chart.  Duration: about 3 minutes per round with the defaults.
. "$(dirname "$0")/../lib.sh"

ROUNDS=3; DURATION=5; WARMUP=1
BODIES="0 1024 16384 262144"; CONCS="1 16 64"
OUT=$REPO/docs/bench
WORKERS=2            # Kong workers the driver plays
PACED_RATE=2000      # exchanges/s for the paced latency run (both servers sustain it)
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --bodies) BODIES=$2; shift 2 ;;
    --concurrency) CONCS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) ROUNDS=1; DURATION=2; WARMUP=0.5; shift ;;
    *) die "unknown option $1" ;;
  esac
done
case "$ROUNDS" in [1-9]|10) ;; *) die "--rounds must be 1..10" ;; esac

bench_init rpc
require_tools jq
build_all
require_js_peer
mkdir -p "$OUT"
RESULTS=$OUT/rpc-results.jsonl
: > "$RESULTS.tmp"

# ---- servers and collectors ----------------------------------------------
start_collector c;   C_PORT=$COLLECTOR_PORT
start_collector js;  JS_PORT=$COLLECTOR_PORT
start_collector js9; JS9_PORT=$COLLECTOR_PORT

"$KPS_SERVER" --plugin tcp-body-log --socket "$T/c.sock" --log-level notice </dev/null >"$T/c.log" 2>&1 &
C_PID=$!; track_pid "$C_PID"
# shellcheck disable=SC2046
$(js_server_cmd js-tcp-body-log "$T" js.sock) </dev/null >"$T/js.log" 2>&1 &
JS_PID=$!; track_pid "$JS_PID"
$(js_server_cmd bodylog "$T" js9.sock) </dev/null >"$T/js9.log" 2>&1 &
JS9_PID=$!; track_pid "$JS9_PID"
wait_until 20 "kong-c-pluginserver" socket_accepts "$T/c.sock"
wait_until 20 "kong-js-pluginserver (js-tcp-body-log)" socket_accepts "$T/js.sock"
wait_until 20 "kong-js-pluginserver (bodylog)" socket_accepts "$T/js9.sock"
sleep 1
{
  machine_info | jq -R -s -c 'split("\n") | map(select(length > 0) | split("=") | {(.[0]): (.[1:] | join("="))}) | add + {type: "machine"}'
  for m in c js js9; do
    eval "pid=\$$(echo "$m" | tr a-z A-Z)_PID"
    echo "{\"type\":\"memory\",\"mode\":\"$m\",\"when\":\"idle_start\",\"rss_kib\":$(status_kib "$pid" VmRSS)}"
  done
} >> "$RESULTS.tmp"

# Kong sends the config JSON with its own keys added (R31); bodies are logged
# whole at every size (max_body_size 256 KiB) and the queue holds 256 MiB, so
# that no record is dropped by the caps at 256 KiB x 64.
kong_keys='"__seq__":1,"__plugin_id":"9a6b4c1e-2d3f-4a5b-8c7d-0e1f2a3b4c5d","__key__":"plugins:bench:::::0dc6f45b-8f8d-40d2-a504-473544ee190b","__ws_id":"0dc6f45b-8f8d-40d2-a504-473544ee190b","route_id":null,"service_id":null,"consumer_id":null'
tbl_config() { # port
  echo "{\"host\":\"127.0.0.1\",\"port\":$1,\"max_body_size\":262144,\"queue_max_bytes\":268435456,$kong_keys}"
}

# records tcp-body-log refused (queue caps), from the server's status
c_dropped() { # mode
  if [ "$1" = c ]; then
    "$KPS_SERVER" --status --socket "$T/c.sock" 2>/dev/null |
      jq '[.Plugins["tcp-body-log"].records_refused // 0] | add' 2>/dev/null || echo 0
  else
    echo 0
  fi
}

run_one() { # mode body concurrency round [extra driver args...]
  _m=$1; _b=$2; _c=$3; _r=$4; shift 4
  case "$_m" in
    c) _sock=$T/c.sock; _plugin=tcp-body-log; _phases=response,log; _pid=$C_PID
       _cfg=$(tbl_config "$C_PORT"); _cnt=$T/c.count ;;
    js) _sock=$T/js.sock; _plugin=js-tcp-body-log; _phases=response,log; _pid=$JS_PID
        _cfg=$(tbl_config "$JS_PORT"); _cnt=$T/js.count ;;
    js9) _sock=$T/js9.sock; _plugin=bodylog; _phases=access,response,log; _pid=$JS9_PID
         _cfg="{\"host\":\"127.0.0.1\",\"port\":$JS9_PORT,\"timeout\":10000,$kong_keys}"; _cnt=$T/js9.count ;;
  esac
  kill -0 "$_pid" 2>/dev/null || die "the $_m server is gone (see $T/$_m.log)"
  _load=$(cut -d' ' -f1 /proc/loadavg)
  _d0=$(c_dropped "$_m")
  _line=$(timeout $(( ${DURATION%.*} + 120 )) "$KPS_RPC_BENCH" --socket "$_sock" --plugin "$_plugin" \
            --phases "$_phases" --config "$_cfg" --workers "$WORKERS" --concurrency "$_c" --body "$_b" \
            --warmup "$WARMUP" --duration "$DURATION" --pid "$_pid" --count-file "$_cnt" \
            --label "$_m" "$@" 2>>"$T/driver.err") || true
  [ -n "$_line" ] || { tail -n 5 "$T/driver.err" >&2; die "driver failed: $_m body=$_b c=$_c"; }
  _dropped=$(( $(c_dropped "$_m") - _d0 ))
  # lines the collector lacks must be records the server refused and counted
  # (drop-newest at queue_max_bytes: the collector reads slower than it writes)
  echo "$_line" | jq -c --arg mode "$_m" --argjson round "$_r" --argjson load "$_load" \
    --argjson dropped "$_dropped" '. + {type:"rpc", mode:$mode, round:$round, loadavg1:$load,
      server_dropped: (if $mode == "c" then $dropped else null end),
      collector_accounted: (.collector_ok or ($mode == "c" and .collector_got + $dropped == .collector_expected))}' >> "$RESULTS.tmp"
  echo "$_line" | jq -r --arg m "$_m" '"\($m)\tbody=\(.body)\tc=\(.concurrency)\trate=\(.rate)\t\(.exchanges_per_s|floor) x/s\t\(.rpcs_per_exchange) rpc/x\tp99 \(.p99_us)us\tcpu \(.server_cpu_us_per_exchange)us/x\tlines ok=\(.collector_ok)"' >&2
  [ "$(echo "$_line" | jq -r .collector_ok)" = true ] ||
    say "WARNING: collector lines $(echo "$_line" | jq -r '"\(.collector_got) of \(.collector_expected)"') ($_m body=$_b c=$_c); records the server dropped: $_dropped"
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
  say "round $r of $ROUNDS"
  if [ $((r % 2)) = 1 ]; then order="c js"; else order="js c"; fi
  for b in $BODIES; do
    for c in $CONCS; do
      for m in $order; do run_one "$m" "$b" "$c" "$r"; done
    done
    run_one js9 "$b" 16 "$r"
  done
  for m in $order; do run_one "$m" 1024 16 "$r" --rate "$PACED_RATE"; done
  r=$((r + 1))
done

say "idle 10 s, then RSS"
sleep 10
for m in c js js9; do
  eval "pid=\$$(echo "$m" | tr a-z A-Z)_PID"
  echo "{\"type\":\"memory\",\"mode\":\"$m\",\"when\":\"idle_after_load\",\"rss_kib\":$(status_kib "$pid" VmRSS),\"hwm_kib\":$(status_kib "$pid" VmHWM)}" >> "$RESULTS.tmp"
done
mv "$RESULTS.tmp" "$RESULTS"
say "results: $RESULTS"
"$BENCH/report.sh" --out "$OUT" || say "report.sh failed"
