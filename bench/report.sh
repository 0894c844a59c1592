#!/bin/sh
# bench/report.sh: tables (Markdown) and charts (gnuplot PNG) from the
# results of bench/rpc/run.sh and bench/e2e/run.sh.
#
#   bench/report.sh [--out docs/bench]
#
# Reads <out>/rpc-results.jsonl and <out>/e2e-results.jsonl (whichever
# exist); writes <out>/rpc-tables.md, <out>/e2e-tables.md, <out>/targets.md,
# <out>/rpc.dat, <out>/e2e.dat, <out>/rpc.png, <out>/e2e.png.  Figures are
# medians over the rounds of one run; ratios are taken per round (the modes
# of a round ran back to back) and their median is reported.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/../docs/bench
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "report.sh: jq is required" >&2; exit 1; }

JQLIB='
def median: map(select(. != null)) | sort | if length == 0 then null
  elif length % 2 == 1 then .[length / 2 | floor]
  else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def r0: if . == null then "-" else (. + 0.5 | floor | tostring) end;
def r1: if . == null then "-" else ((. * 10 + 0.5 | floor) / 10 | tostring) end;
def r2: if . == null then "-" else ((. * 100 + 0.5 | floor) / 100 | tostring) end;
def kib: if . == 0 then "0 B" elif . < 1024 then "\(.) B" elif . < 1048576 then "\(. / 1024 | floor) KiB" else "\(. / 1048576) MiB" end;
def mib: if . == null then "-" else ((. / 1024 * 10 + 0.5 | floor) / 10 | tostring) end;
'

# ---- protocol level ----------------------------------------------------------
RPC=$OUT/rpc-results.jsonl
if [ -s "$RPC" ]; then
  jq -s -r "$JQLIB"'
    (map(select(.type == "rpc" and .rate == 0))) as $runs
    | ($runs | map(.round) | unique | length) as $rounds
    | "Protocol level (bench/rpc/run.sh): medians of \($rounds) round(s); `c` = tcp-body-log on kong-c-pluginserver, `js` = its port on kong-pdk, `js9` = the peers'"'"' 9-RPC bodylog on kong-pdk. x/s = exchanges per second; CPU = server CPU per exchange; p50/p99/p99.9 = per-RPC latency; peak RSS = server VmHWM during the run (reset before it; round 1, where the server had not yet seen larger bodies); lines = collector lines == exchanges in every run.\n",
      "| body | conc | c x/s | js x/s | c/js | js9 x/s | c RPC/s | RPC/x c, js, js9 | c p50 / p99 / p99.9 µs | js p99 µs | c CPU µs/x | js CPU µs/x | c peak RSS MiB (round 1) | js peak RSS MiB (round 1) | lines |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
      ($runs | group_by(.body) | .[] | group_by(.concurrency) | .[] |
        (map(select(.mode == "c"))) as $c | (map(select(.mode == "js"))) as $j |
        ($runs | map(select(.mode == "js9" and .body == $c[0].body and .concurrency == $c[0].concurrency))) as $j9 |
        ([ $c[] as $x | ($j | map(select(.round == $x.round))[0]) as $y | if $y then $x.exchanges_per_s / $y.exchanges_per_s else null end ] | median) as $ratio |
        "| \($c[0].body | kib) | \($c[0].concurrency) | \($c | map(.exchanges_per_s) | median | r0) | \($j | map(.exchanges_per_s) | median | r0) | \($ratio | r1)× | \($j9 | map(.exchanges_per_s) | median | r0) | \($c | map(.rpcs_per_s) | median | r0) | \($c | map(.rpcs_per_exchange) | median | r2), \($j | map(.rpcs_per_exchange) | median | r2), \($j9 | map(.rpcs_per_exchange) | median | r2) | \($c | map(.p50_us) | median | r0) / \($c | map(.p99_us) | median | r0) / \($c | map(.p999_us) | median | r0) | \($j | map(.p99_us) | median | r0) | \($c | map(.server_cpu_us_per_exchange) | median | r1) | \($j | map(.server_cpu_us_per_exchange) | median | r1) | \($c | map(select(.round == 1))[0].server_hwm_kib | mib) | \($j | map(select(.round == 1))[0].server_hwm_kib | mib) | \(if ((map(.collector_ok)) + ($j9 | map(.collector_ok)) | all) then "ok"
          elif ((map(.collector_accounted // false)) + ($j9 | map(.collector_ok)) | all) then "ok + \(map(.server_dropped // 0) | add) refused (queue cap)"
          else "MISMATCH" end) |"),
      "",
      "Paced (open loop, fixed offered rate, at most 16 exchanges in flight, 1 KiB): per-RPC latency below saturation.\n",
      "| mode | rate x/s | achieved x/s | p50 µs | p99 µs | p99.9 µs | CPU µs/x | late starts |",
      "|---|---|---|---|---|---|---|---|",
      (map(select(.type == "rpc" and .rate > 0)) | group_by(.mode) | .[] |
        "| \(.[0].mode) | \(.[0].rate) | \(map(.exchanges_per_s) | median | r0) | \(map(.p50_us) | median | r0) | \(map(.p99_us) | median | r0) | \(map(.p999_us) | median | r0) | \(map(.server_cpu_us_per_exchange) | median | r1) | \(map(.late_starts) | add) |"),
      "",
      "Server RSS (VmRSS, MiB): \(map(select(.type == "memory")) | map("\(.mode) \(.when) \(.rss_kib | mib)") | join("; ")).",
      "",
      "Machine: \(map(select(.type == "machine"))[0] | "\(.nproc) CPUs (\(.cpu)), kernel \(.kernel), node \(.node), HEAD \(.git), server binary sha1 \(.server_sha1 // "?"), \(.date)")."
  ' "$RPC" > "$OUT/rpc-tables.md"

  # chart data: body, c, js, js9 exchanges/s at concurrency 16
  jq -s -r "$JQLIB"'
    map(select(.type == "rpc" and .rate == 0 and .concurrency == 16)) | group_by(.body) | .[] |
    "\(.[0].body | kib | gsub(" "; ""))\t\(map(select(.mode == "c") | .exchanges_per_s) | median)\t\(map(select(.mode == "js") | .exchanges_per_s) | median)\t\(map(select(.mode == "js9") | .exchanges_per_s) | median // 0)"
  ' "$RPC" > "$OUT/rpc.dat"
fi

# ---- end to end ----------------------------------------------------------------
E2E=$OUT/e2e-results.jsonl
if [ -s "$E2E" ]; then
  jq -s -r "$JQLIB"'
    (map(select(.type == "e2e" and .round > 0))) as $runs
    | ($runs | map(.round) | unique | length) as $rounds
    | def mode($m): map(select(.mode == $m));
    "End to end (bench/e2e/run.sh): wrk, \($runs[0].connections) connections, POST bodies through the gateway (2 workers) to a 1 KiB upstream response; medians of \($rounds) round(s). gw CPU = nginx workers'"'"' CPU per request; server CPU = the plugin server'"'"'s; lines: collector lines == requests nginx served in every run.\n",
      "| body | none req/s | lua req/s | c req/s | js req/s | c/js | c/lua | p50 / p99 ms none, lua, c, js | gw CPU µs/req none, lua, c, js | server CPU µs/req c, js | lines |",
      "|---|---|---|---|---|---|---|---|---|---|---|",
      ($runs | group_by(.body) | .[] | . as $b |
        ([ mode("c")[] as $x | ($b | mode("js") | map(select(.round == $x.round))[0]) as $y | if $y then $x.rps / $y.rps else null end ] | median) as $cj |
        ([ mode("c")[] as $x | ($b | mode("lua") | map(select(.round == $x.round))[0]) as $y | if $y then $x.rps / $y.rps else null end ] | median) as $cl |
        def lat($m): ($b | mode($m)) as $r | "\($r | map(.p50_us / 1000) | median | r1)/\($r | map(.p99_us / 1000) | median | r1)";
        def gcpu($m): ($b | mode($m) | map(.gateway_cpu_us_per_req) | median | r0);
        def scpu($m): ($b | mode($m) | map(.server_cpu_us_per_req) | median | r0);
        "| \($b[0].body | kib) | \(mode("none") | map(.rps) | median | r0) | \(mode("lua") | map(.rps) | median | r0) | \(mode("c") | map(.rps) | median | r0) | \(mode("js") | map(.rps) | median | r0) | \($cj | r2)× | \($cl | r2)× | \(lat("none")), \(lat("lua")), \(lat("c")), \(lat("js")) | \(gcpu("none")), \(gcpu("lua")), \(gcpu("c")), \(gcpu("js")) | \(scpu("c")), \(scpu("js")) | \(if (map(select(.mode != "none") | .lines_ok and .non_200 == 0 and .in_flight_at_stop >= 0 and .in_flight_at_stop <= .connections) | all) then "ok" else "MISMATCH" end) |"),
      "",
      "Per run: \($runs | length) runs, requests wrk counted \($runs | map(.requests) | add), served by nginx \($runs | map(.served) | add), collector lines (logging modes) \($runs | map(select(.mode != "none") | .collector_lines) | add) for \($runs | map(select(.mode != "none") | .served) | add) served; answered non-200 \($runs | map(.non_200) | add); abandoned by wrk at stop (499, still logged) \($runs | map(.aborted_499 // 0) | add).",
      "",
      "Machine: \(map(select(.type == "machine"))[0] | "\(.nproc) CPUs (\(.cpu)), kernel \(.kernel), nginx \(.nginx), wrk \(.wrk), node \(.node), client_body_buffer_size \(.client_body_buffer_size), HEAD \(.git), server binary sha1 \(.server_sha1 // "?"), \(.date)")."
  ' "$E2E" > "$OUT/e2e-tables.md"

  jq -s -r "$JQLIB"'
    map(select(.type == "e2e" and .round > 0)) | group_by(.body) | .[] |
    "\(.[0].body | kib | gsub(" "; ""))\t\(map(select(.mode == "none") | .rps) | median)\t\(map(select(.mode == "lua") | .rps) | median)\t\(map(select(.mode == "c") | .rps) | median)\t\(map(select(.mode == "js") | .rps) | median)"
  ' "$E2E" > "$OUT/e2e.dat"
fi

# ---- targets (issue 5) -------------------------------------------------------
if [ -s "$RPC" ] && [ -s "$E2E" ]; then
  jq -n -r --slurpfile rpcfile "$RPC" --slurpfile e2efile "$E2E" "$JQLIB"'
    ($rpcfile | map(select(.type == "rpc" and .rate == 0))) as $rpc |
    ($rpcfile | map(select(.type == "memory"))) as $mem |
    ($e2efile | map(select(.type == "e2e" and .round > 0))) as $e2e |
    def pratio($body; $conc): [ $rpc[] | select(.mode == "c" and .body == $body and .concurrency == $conc) as $x |
        ($rpc | map(select(.mode == "js" and .body == $body and .concurrency == $conc and .round == $x.round))[0]) as $y |
        if $y then $x.exchanges_per_s / $y.exchanges_per_s else null end ] | median;
    def eratio($body; $a; $b): [ $e2e[] | select(.mode == $a and .body == $body) as $x |
        ($e2e | map(select(.mode == $b and .body == $body and .round == $x.round))[0]) as $y |
        if $y then $x.rps / $y.rps else null end ] | median;
    def row($what; $target; $v; $ok): "| \($what) | \($target) | \($v) | \(if $ok == null then "not measured" elif $ok then "met" else "**missed**" end) |";
    def ge($v; $t): if $v == null then null else $v >= $t end;
    def le($v; $t): if $v == null then null else $v <= $t end;
    ([16, 1, 64] | map(. as $c | [0, 1024, 16384, 262144] | map(pratio(.; $c))) | flatten | map(select(. != null)) | min) as $pmin |
    ($e2e | map(select(.mode == "c" and .body == 1024) | .server_cpu_us_per_req) | median) as $cpu_e2e |
    ($rpc | map(select(.mode == "c" and .body == 1024 and .concurrency == 16) | .server_cpu_us_per_exchange) | median) as $cpu_rpc |
    ($rpc | map(select(.mode == "c" and .body == 1024 and .concurrency == 16) | .p99_us) | median) as $p99 |
    ($mem | map(select(.mode == "c" and .when == "idle_after_load"))[0].rss_kib) as $idle |
    "| target | wanted | measured | |", "|---|---|---|---|",
    row("e2e c/js, 0 B"; "≥ 2×"; "\(eratio(0; "c"; "js") | r2)×"; ge(eratio(0; "c"; "js"); 2)),
    row("e2e c/js, 1 KiB"; "≥ 2×"; "\(eratio(1024; "c"; "js") | r2)×"; ge(eratio(1024; "c"; "js"); 2)),
    row("e2e c/js, 16 KiB"; "≥ 5×"; "\(eratio(16384; "c"; "js") | r2)×"; ge(eratio(16384; "c"; "js"); 5)),
    row("e2e c/lua, 1 KiB"; "≥ 0.35×"; "\(eratio(1024; "c"; "lua") | r2)×"; ge(eratio(1024; "c"; "lua"); 0.35)),
    row("e2e c/lua, 16 KiB"; "≥ 0.55×"; "\(eratio(16384; "c"; "lua") | r2)×"; ge(eratio(16384; "c"; "lua"); 0.55)),
    row("collector lines == requests served (e2e)"; "every run"; (if ($e2e | map(select(.mode != "none") | .lines_ok) | all) then "every run (\($e2e | map(select(.mode != "none")) | length) runs)" else "MISMATCH" end); ($e2e | map(select(.mode != "none") | .lines_ok) | all)),
    row("collector lines == exchanges (protocol)"; "every run"; (if ($rpc | map(.collector_ok) | all) then "every run (\($rpc | length) runs)" elif ($rpc | map(.collector_accounted // false) | all) then "\($rpc | map(select(.collector_ok | not)) | length) of \($rpc | length) runs short, by exactly the records the server refused at queue_max_bytes (\($rpc | map(.server_dropped // 0) | add) in all)" else "MISMATCH" end); ($rpc | map(.collector_ok) | all)),
    row("server CPU per exchange, 1 KiB (e2e)"; "≤ 60 µs"; "\($cpu_e2e | r1) µs"; le($cpu_e2e; 60)),
    row("server CPU per exchange, 1 KiB, c16 (protocol, saturated)"; "≤ 60 µs"; "\($cpu_rpc | r1) µs"; le($cpu_rpc; 60)),
    row("protocol c/js x/s, every body size and concurrency"; "≥ 5×"; "min \($pmin | r2)× (1 KiB c16: \(pratio(1024; 16) | r2)×, 256 KiB c16: \(pratio(262144; 16) | r2)×)"; ge($pmin; 5)),
    row("p99 per RPC, c16, 1 KiB (saturated)"; "≤ 100 µs"; "\($p99 | r0) µs"; le($p99; 100)),
    row("idle RSS after the load"; "≤ 20 MiB"; "\($idle | mib) MiB"; le($idle; 20480)),
    row("RPCs per logged exchange"; "printed, explained"; "\($rpc | map(select(.mode == "c") | .rpcs_per_exchange) | median | r2) (js port \($rpc | map(select(.mode == "js") | .rpcs_per_exchange) | median | r2), peers 9-RPC \($rpc | map(select(.mode == "js9") | .rpcs_per_exchange) | median | r2))"; true)
  ' > "$OUT/targets.md"
fi

# ---- charts --------------------------------------------------------------------
if command -v gnuplot >/dev/null 2>&1; then
  if [ -s "$OUT/rpc.dat" ]; then
    gnuplot <<GP
set terminal pngcairo size 900,500 font "sans,10"
set output "$OUT/rpc.png"
set title "Protocol level: exchanges/s at concurrency 16 (bench/rpc, medians)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [10:*]
set ylabel "exchanges/s (log scale)"
set xlabel "request and response body size"
set key top right
set grid ytics
plot "$OUT/rpc.dat" using 2:xtic(1) title "tcp-body-log on kong-c-pluginserver (6 RPCs)", \
     "" using 3 title "JS port on kong-pdk (6 RPCs)", \
     "" using 4 title "peers' bodylog on kong-pdk (9 RPCs)"
GP
  fi
  if [ -s "$OUT/e2e.dat" ]; then
    gnuplot <<GP
set terminal pngcairo size 900,500 font "sans,10"
set output "$OUT/e2e.png"
set title "End to end: requests/s through the gateway (bench/e2e, 2 workers, medians)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set yrange [0:*]
set ylabel "requests/s"
set xlabel "request body size (1 KiB responses)"
set key top right
set grid ytics
plot "$OUT/e2e.dat" using 2:xtic(1) title "no plugin", \
     "" using 3 title "native Lua body logger", \
     "" using 4 title "tcp-body-log (C server)", \
     "" using 5 title "JS port (kong-pdk)"
GP
  fi
else
  echo "report.sh: gnuplot not found, no charts (apt-get install gnuplot-nox)" >&2
fi
echo "report: $OUT/{rpc-tables,e2e-tables,targets}.md, $OUT/{rpc,e2e}.png" >&2
