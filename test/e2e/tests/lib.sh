# Shared helpers of the end-to-end tests (sourced, POSIX sh).
# Every test gets its own directory ($T), loopback ports, and a cleanup trap
# that stops every gateway, upstream, collector and relay it started, by pid.
# Set KEEP=1 to keep $T after a run; on failure the logs are printed.

set -eu

E2E=$(cd "$(dirname "$0")/.." && pwd)
REPO=$(cd "$E2E/../.." && pwd)
JS_PEER=$REPO/bench/peers/js
MPDECODE="node $E2E/tools/mpdecode.js"
T=$(mktemp -d "${TMPDIR:-/tmp}/kps-e2e.XXXXXX")

_PIDS=""
_GATEWAYS=""
_UPSTREAMS=""

_cleanup() {
  rc=$?
  set +e
  for g in $_GATEWAYS; do "$E2E/gateway.sh" stop "$g" >/dev/null 2>&1; done
  for u in $_UPSTREAMS; do "$E2E/upstream.sh" stop "$u" >/dev/null 2>&1; done
  for p in $_PIDS; do
    kill "$p" 2>/dev/null
    _n=0
    while kill -0 "$p" 2>/dev/null && [ $_n -lt 30 ]; do sleep 0.1; _n=$((_n + 1)); done
    kill -9 "$p" 2>/dev/null
  done
  if [ "$rc" != 0 ]; then
    echo "---- test failed (rc=$rc); logs in $T ----"
    for g in $_GATEWAYS; do
      echo "---- $g/logs/error.log (last 60 lines) ----"; tail -n 60 "$g/logs/error.log" 2>/dev/null
    done
  elif [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$T"
  fi
  exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

assert_eq() { # actual expected what
  [ "$1" = "$2" ] || fail "$3: expected [$2], got [$1]"
  ok "$3 = $2"
}

# jq filter on a file (or "-" for stdin) must print exactly `expected`
assert_jq() { # file filter expected what
  _got=$(jq -c -r "$2" "$1" 2>&1) || fail "$4: jq '$2' failed: $_got"
  assert_eq "$_got" "$3" "$4"
}

assert_grep() { # file pattern what
  grep -q -- "$2" "$1" || fail "$3: no line matching [$2] in $1"
  ok "$3"
}

# The gateway logs a plugin server's output as it reads it: give it a moment.
wait_grep() { # seconds file pattern what
  wait_until "$1" "$4" grep -q -- "$3" "$2"
  ok "$4"
}
assert_no_grep() { # file pattern what
  if grep -q -- "$2" "$1"; then fail "$3: unexpected line matching [$2] in $1"; fi
  ok "$3"
}

require_tools() {
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || fail "missing tool: $t"; done
}

require_js_peer() {
  require_tools node jq curl socat nginx
  [ -f "$JS_PEER/node_modules/kong-pdk/bin/kong-js-pluginserver" ] ||
    fail "kong-pdk is not installed: run 'npm ci' in $JS_PEER (the e2e_js_peer_install test does it)"
}

# a random unused loopback TCP port below the ephemeral range, so that no
# client connection can be holding it (bounded tries)
free_port() {
  _lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$_lo" -gt 12000 ] || fail "ephemeral port range starts at $_lo: no room for test ports"
  _i=0
  while [ $_i -lt 50 ]; do
    _p=$(( 10000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % (_lo - 10000) ))
    if [ -z "$(ss -Htan "sport = :$_p" 2>/dev/null)" ]; then echo "$_p"; return 0; fi
    _i=$((_i + 1))
  done
  fail "no free port found"
}

# poll with a deadline (seconds); runs `cmd` until it succeeds
wait_until() { # seconds what cmd...
  _secs=$1; _what=$2; shift 2
  _end=$(( $(date +%s) + _secs ))
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$_end" ] || fail "timed out after ${_secs}s waiting for $_what"
    sleep 0.05
  done
}

# connect and close without sending a byte (plugin servers must not see garbage)
socket_accepts() {
  node -e 'const c=require("net").connect(process.argv[1]);c.on("connect",()=>{c.destroy();process.exit(0)});c.on("error",()=>process.exit(1))' "$1"
}

lines() { [ -f "$1" ] && wc -l < "$1" | tr -d ' ' || echo 0; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }

wait_lines() { # file n seconds
  wait_until "$3" "$2 line(s) in $1" has_lines "$1" "$2"
}

start_upstream() { # port -> $T/up
  "$E2E/upstream.sh" start "$T/up" --port "$1" >/dev/null
  _UPSTREAMS="$_UPSTREAMS $T/up"
}

start_collector() { # port file
  socat -u "TCP-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr,backlog=1024" "OPEN:$2,creat,append" &
  _PIDS="$_PIDS $!"
  wait_until 5 "collector on port $1" sh -c "ss -ltn | grep -q '127.0.0.1:$1 '"
}

start_relay() { # listen-sock target-sock outdir
  node "$E2E/tools/mprelay.js" "$1" "$2" "$3" >"$3.log" 2>&1 &
  _PIDS="$_PIDS $!"
  wait_until 5 "relay socket $1" test -S "$1"
}

start_gateway() { # workdir args...
  _gw=$1; shift
  _GATEWAYS="$_GATEWAYS $_gw"
  "$E2E/gateway.sh" start "$_gw" "$@" >/dev/null
}

stop_gateway() { # workdir
  "$E2E/gateway.sh" stop "$1"
}

# kong-js-pluginserver serving one plugin directory of bench/peers/js/plugins
js_start_cmd() { # plugin prefix sockname
  echo "$(command -v node) $JS_PEER/node_modules/kong-pdk/bin/kong-js-pluginserver --plugins-directory $JS_PEER/plugins/$1 --kong-prefix $2 --sock-name $3"
}
js_query_cmd() { # plugin
  echo "$(command -v node) $JS_PEER/node_modules/kong-pdk/bin/kong-js-pluginserver --plugins-directory $JS_PEER/plugins/$1 --dump-all-plugins"
}

# curl: prints the status code; body to $T/body, headers to $T/headers
http() { # method path [curl args...]
  _m=$1; _p=$2; shift 2
  curl -s --max-time 30 -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$_m" "$@" "http://127.0.0.1:$GW_PORT$_p"
}

# line of a JSON-lines file whose request.id equals the X-Kong-Request-Id of the last http()
last_request_id() {
  sed -n 's/^[Xx]-[Kk]ong-[Rr]equest-[Ii]d: *\([0-9a-f]*\).*/\1/p' "$T/headers" | tr -d '\r'
}

# A gateway prefix $GW with, for each named JS plugin (a directory of
# bench/peers/js/plugins), a pluginserver entry "js-<plugin>" whose socket is
# a recording relay ($GW/js-<plugin>.sock -> $GW/<plugin>.real.sock, bytes in
# $T/wire-<plugin>/).  Also an upstream ($UP_PORT) and a collector
# ($SINK_PORT -> $T/sink.jsonl).  Writes $T/kong.conf.
js_env() { # plugins...
  GW=$T/gw
  GW_PORT=$(free_port); UP_PORT=$(free_port); SINK_PORT=$(free_port)
  DEAD_PORT=$(free_port)        # nothing listens there: upstream 502
  mkdir -p "$GW"
  start_upstream "$UP_PORT"
  start_collector "$SINK_PORT" "$T/sink.jsonl"
  _names=""
  : > "$T/kong.conf.servers"
  for p in "$@"; do
    start_relay "$GW/js-$p.sock" "$GW/$p.real.sock" "$T/wire-$p"
    _names="${_names:+$_names,}js-$p"
    _key=$(echo "js_$p" | tr '-' '_')
    cat >> "$T/kong.conf.servers" <<CONF
pluginserver_${_key}_socket = $GW/js-$p.sock
pluginserver_${_key}_start_cmd = $(js_start_cmd "$p" "$GW" "$p.real.sock")
pluginserver_${_key}_query_cmd = $(js_query_cmd "$p")
CONF
  done
  {
    echo "# generated by $(basename "$0")"
    echo "plugins = bundled,$(echo "$*" | tr ' ' ',')"
    echo "pluginserver_names = $_names"
    cat "$T/kong.conf.servers"
    echo "log_level = info"
  } > "$T/kong.conf"
  JS_PLUGINS="$*"
}

# after start_gateway: the JS servers themselves accept (not only the relays)
js_wait_ready() {
  for p in $JS_PLUGINS; do
    wait_until 20 "kong-js-pluginserver for $p" socket_accepts "$GW/$p.real.sock"
  done
}

# the pid of the plugin server the gateway started for pluginserver <name>
server_pid() { cat "$GW/pluginservers/$1.pid"; }

# ---- kong-c-pluginserver under the gateway -----------------------------
# KPS_SERVER and KPS_COLLECTOR name the build's binaries (set by ctest).

# kong.conf.example's entries point at /usr/local/bin; point them at the
# build the way Kong reads KONG_* overrides.  $1: the gateway workdir.
kps_env() { # prefix [kong version the dump is for]
  [ -x "${KPS_SERVER:-}" ] || fail "KPS_SERVER is not set to the server binary"
  _dump="-dump${2:+ --kong-version $2}"
  export KONG_PLUGINSERVER_TCP_BODY_LOG_START_CMD="$KPS_SERVER --plugin tcp-body-log -kong-prefix $1"
  export KONG_PLUGINSERVER_TCP_BODY_LOG_QUERY_CMD="$KPS_SERVER --plugin tcp-body-log $_dump"
  export KONG_PLUGINSERVER_C_HELLO_START_CMD="$KPS_SERVER --plugin c-hello -kong-prefix $1"
  export KONG_PLUGINSERVER_C_HELLO_QUERY_CMD="$KPS_SERVER --plugin c-hello $_dump"
}

# Kong 3.0-3.8 default the socket to /usr/local/kong/<name>.socket: spell it
# out, as kong.conf.example tells users of those versions to.
kps_env_sockets() { # workdir
  export KONG_PLUGINSERVER_TCP_BODY_LOG_SOCKET="$1/tcp-body-log.socket"
  export KONG_PLUGINSERVER_C_HELLO_SOCKET="$1/c-hello.socket"
}

kps_start_collector() { # port file [collector args...]
  [ -x "${KPS_COLLECTOR:-}" ] || fail "KPS_COLLECTOR is not set to the collector binary"
  _port=$1; _file=$2; shift 2
  "$KPS_COLLECTOR" --listen "127.0.0.1:$_port" --out "$_file" --quiet "$@" </dev/null >/dev/null 2>&1 &
  _PIDS="$_PIDS $!"
  KPS_COLLECTOR_PID=$!
  wait_until 5 "collector on port $_port" sh -c "ss -ltn | grep -q '127.0.0.1:$_port '"
}

# The one record whose request.uri is $2, from collector file $1.
record_for() { # file uri
  jq -c --arg u "$2" 'select(.request.uri == $u)' "$1"
}
