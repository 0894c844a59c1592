# Shared helpers of the benchmark scripts (sourced, POSIX sh).
#
# Builds what the benchmarks need from this checkout (out of tree, in
# $KPS_BENCH_BUILD, default /tmp/kps-bench-build): the server and the
# collector (RelWithDebInfo, the main CMake project) and the load driver
# (bench/rpc, its own CMake project).  KPS_SERVER / KPS_COLLECTOR /
# KPS_RPC_BENCH point at existing binaries instead.
#
# Everything listens on 127.0.0.1 or on Unix sockets in a temp dir ($T);
# every process started here is stopped by pid at exit.

set -eu

if [ -f "$(dirname "$0")/lib.sh" ]; then BENCH=$(cd "$(dirname "$0")" && pwd)
else BENCH=$(cd "$(dirname "$0")/.." && pwd); fi
REPO=$(cd "$BENCH/.." && pwd)
JS_PEER=$REPO/bench/peers/js
KPS_BENCH_BUILD=${KPS_BENCH_BUILD:-/tmp/kps-bench-build}

_PIDS=""
_CLEANUP_EXTRA=""
T=""

say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

_bench_cleanup() {
  rc=$?
  set +e
  if [ -n "$_CLEANUP_EXTRA" ]; then eval "$_CLEANUP_EXTRA"; fi
  for p in $_PIDS; do
    kill "$p" 2>/dev/null
  done
  for p in $_PIDS; do
    _n=0
    while kill -0 "$p" 2>/dev/null && [ $_n -lt 50 ]; do sleep 0.1; _n=$((_n + 1)); done
    kill -9 "$p" 2>/dev/null
  done
  if [ -n "$T" ] && [ "${KEEP:-0}" != 1 ] && [ "$rc" = 0 ]; then rm -rf "$T"; fi
  [ "$rc" = 0 ] || say "failed (rc=$rc); files in ${T:-?}"
  exit "$rc"
}

bench_init() { # name
  T=$(mktemp -d "${TMPDIR:-/tmp}/kps-bench-$1.XXXXXX")
  trap _bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

track_pid() { _PIDS="$_PIDS $1"; }

require_tools() {
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || die "missing tool: $t (see docs/benchmarks.md)"; done
}

# poll with a deadline (seconds)
wait_until() { # seconds what cmd...
  _secs=$1; _what=$2; shift 2
  _end=$(( $(date +%s) + _secs ))
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$_end" ] || die "timed out after ${_secs}s waiting for $_what"
    sleep 0.05
  done
}

build_all() {
  require_tools cmake pkg-config cc
  if [ -z "${KPS_SERVER:-}" ] || [ -z "${KPS_COLLECTOR:-}" ]; then
    say "building the server and the collector in $KPS_BENCH_BUILD/main (RelWithDebInfo)"
    cmake -S "$REPO" -B "$KPS_BENCH_BUILD/main" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$KPS_BENCH_BUILD.log" 2>&1 ||
      { tail -n 30 "$KPS_BENCH_BUILD.log" >&2; die "cmake configure failed"; }
    cmake --build "$KPS_BENCH_BUILD/main" -j2 --target kong-c-pluginserver kps-collector >>"$KPS_BENCH_BUILD.log" 2>&1 ||
      { tail -n 30 "$KPS_BENCH_BUILD.log" >&2; die "build failed"; }
    KPS_SERVER=$KPS_BENCH_BUILD/main/src/kong-c-pluginserver
    KPS_COLLECTOR=$KPS_BENCH_BUILD/main/test/tools/kps-collector
  fi
  if [ -z "${KPS_RPC_BENCH:-}" ]; then
    say "building the load driver in $KPS_BENCH_BUILD/rpc (Release)"
    cmake -S "$REPO/bench/rpc" -B "$KPS_BENCH_BUILD/rpc" -DCMAKE_BUILD_TYPE=Release >>"$KPS_BENCH_BUILD.log" 2>&1 &&
      cmake --build "$KPS_BENCH_BUILD/rpc" >>"$KPS_BENCH_BUILD.log" 2>&1 ||
      { tail -n 30 "$KPS_BENCH_BUILD.log" >&2; die "driver build failed"; }
    KPS_RPC_BENCH=$KPS_BENCH_BUILD/rpc/kps-rpc-bench
  fi
  export KPS_SERVER KPS_COLLECTOR KPS_RPC_BENCH
}

require_js_peer() {
  require_tools node
  if [ ! -f "$JS_PEER/node_modules/kong-pdk/bin/kong-js-pluginserver" ]; then
    require_tools npm
    say "installing kong-pdk (npm ci in $JS_PEER)"
    (cd "$JS_PEER" && npm ci --no-audit --no-fund >/dev/null) || die "npm ci failed in $JS_PEER"
  fi
}

js_server_cmd() { # plugin-dir prefix sockname
  echo "$(command -v node) $JS_PEER/node_modules/kong-pdk/bin/kong-js-pluginserver --plugins-directory $JS_PEER/plugins/$1 --kong-prefix $2 --sock-name $3"
}
js_query_cmd() { # plugin-dir
  echo "$(command -v node) $JS_PEER/node_modules/kong-pdk/bin/kong-js-pluginserver --plugins-directory $JS_PEER/plugins/$1 --dump-all-plugins"
}

# a kps-collector on an ephemeral loopback port, counting lines
# (sets COLLECTOR_PORT and COLLECTOR_PID)
start_collector() { # name [extra args...]
  _name=$1; shift
  rm -f "$T/$_name.port" "$T/$_name.count"
  "$KPS_COLLECTOR" --listen 127.0.0.1:0 --port-file "$T/$_name.port" --count-file "$T/$_name.count" \
    --quiet "$@" </dev/null >"$T/$_name.collector.log" 2>&1 &
  COLLECTOR_PID=$!
  track_pid "$COLLECTOR_PID"
  wait_until 10 "collector $_name" test -s "$T/$_name.port"
  COLLECTOR_PORT=$(sed 's/.*://' "$T/$_name.port")
}

count_of() { # count-file
  if [ -s "$1" ]; then cat "$1"; else echo 0; fi
}

# /proc readings: CPU ticks (utime+stime) and memory fields in KiB
cpu_ticks() { # pid...
  _sum=0
  for _p in "$@"; do
    _t=$(sed 's/^.*) //' "/proc/$_p/stat" 2>/dev/null | awk '{print $12 + $13}') || _t=0
    _sum=$((_sum + ${_t:-0}))
  done
  echo "$_sum"
}
clk_tck() { getconf CLK_TCK; }
status_kib() { # pid field
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

socket_accepts() { # unix socket path
  [ -S "$1" ] && node -e 'const c=require("net").connect(process.argv[1]);c.on("connect",()=>{c.destroy();process.exit(0)});c.on("error",()=>process.exit(1))' "$1"
}

machine_info() {
  printf 'nproc=%s\n' "$(nproc)"
  printf 'cpu=%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  printf 'kernel=%s\n' "$(uname -r)"
  printf 'mem_total_kib=%s\n' "$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
  printf 'node=%s\n' "$(node --version 2>/dev/null || echo none)"
  printf 'nginx=%s\n' "$(nginx -v 2>&1 | sed 's/.*nginx\///')"
  printf 'wrk=%s\n' "$(wrk --version 2>&1 | head -n 1 | awk '{print $2}')"
  printf 'git=%s\n' "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet 2>/dev/null || echo +dirty)"
  printf 'src_diff=%s\n' "$(git -C "$REPO" diff HEAD -- src include 2>/dev/null | sha1sum | cut -c1-10)"
  printf 'server_sha1=%s\n' "$(sha1sum "${KPS_SERVER:-/dev/null}" | cut -c1-10)"
  printf 'date=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

# a random unused loopback TCP port below the ephemeral range (bounded tries)
free_port() {
  _lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$_lo" -gt 12000 ] || die "ephemeral port range starts at $_lo: no room for fixed ports"
  _i=0
  while [ $_i -lt 50 ]; do
    _p=$(( 10000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % (_lo - 10000) ))
    if [ -z "$(ss -Htan "sport = :$_p" 2>/dev/null)" ]; then echo "$_p"; return 0; fi
    _i=$((_i + 1))
  done
  die "no free port found"
}
