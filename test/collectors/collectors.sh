# collectors.sh: run real syslog-ng and rsyslog as the collectors of an
# end-to-end test (sourced, POSIX sh, after test/e2e/tests/lib.sh: uses $T,
# $REPO, $_PIDS, fail, ok, wait_until).
#
# The daemons are the Debian 12 packages unpacked by test/collectors/unpack.sh
# (.ci/install-deps runs it) under $KPS_COLLECTORS_DIR (/opt/kps-collectors).
# Each one runs as this test's own foreground process, with the config of
# examples/collectors/<collector>/ that users copy, placeholders substituted,
# and its pid file, control socket and persist file under $T.  Nothing is
# installed, no system daemon is started, nothing listens beyond 127.0.0.1.
#
# An instance is a name (e.g. "c1"); its files are $T/<inst>.conf (the
# config), $T/<inst>.out (what it stored), $T/<inst>.log (its own messages),
# and $T/<inst>.pid (the pid we started).

KPS_COLLECTORS_DIR=${KPS_COLLECTORS_DIR:-/opt/kps-collectors}
COLL_EXAMPLES=$REPO/examples/collectors
# What @APP_NAME@ and @FACILITY@ of the syslog configs become; the tests set
# the plugin's syslog_app_name and syslog_facility to the same.
COLL_APP_NAME=kong-test
COLL_FACILITY=local3

# The binary of a collector, or a failure telling how to get it.
coll_require() { # collector
  case $1 in
    rsyslog) _cb=$KPS_COLLECTORS_DIR/rsyslog/usr/sbin/rsyslogd ;;
    syslog-ng) _cb=$KPS_COLLECTORS_DIR/syslog-ng/usr/sbin/syslog-ng ;;
    *) fail "unknown collector '$1' (rsyslog or syslog-ng)" ;;
  esac
  [ -x "$_cb" ] || fail "$1 is not unpacked in $KPS_COLLECTORS_DIR: run .ci/install-deps (test/collectors/unpack.sh) as root"
  COLL_BIN=$_cb
}

# The max_record_size the README's collector table gives for a collector
# without raising its limit: the last cell of the row whose first cell starts
# with the collector's name.  KPS_COLLECTOR_TABLE may name another file
# holding the table (to try a changed table before it goes into README.md).
coll_max_record_size() { # collector
  _readme=${KPS_COLLECTOR_TABLE:-$REPO/README.md}
  _n=$(awk -F'|' -v n="$1" '
    NF >= 4 { c = $2; gsub(/^[ \t]+|[ \t]+$/, "", c)
              if (index(c, n) == 1) { v = $(NF - 1); gsub(/[^0-9]/, "", v); print v; exit } }' "$_readme")
  [ -n "$_n" ] || fail "no row starting with '$1' and a number in its last cell in the collector table of $_readme"
  echo "$_n"
}

# Renders examples/collectors/<collector>/<config> into $T/<inst>.conf.
coll_render() { # collector config inst port
  _src=$COLL_EXAMPLES/$1/$2
  [ -f "$_src" ] || fail "no collector config $_src"
  sed -e "s|@PORT@|$4|g" -e "s|@OUT@|$T/$3.out|g" -e "s|@CERTDIR@|$T/certs|g" \
      -e "s|@APP_NAME@|$COLL_APP_NAME|g" -e "s|@FACILITY@|$COLL_FACILITY|g" "$_src" > "$T/$3.conf"
  if grep -n '@[A-Z_]*@' "$T/$3.conf"; then fail "placeholder left in $T/$3.conf (from $_src)"; fi
}

# Whether pid (our child) has exited: gone, or a zombie not reaped yet.
_coll_gone() { # pid
  _st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  case $_st in Z*) return 0 ;; esac
  return 1
}

# pid (ours) listens on 127.0.0.1:port.
_coll_listening() { # pid port
  ss -Hltnp "sport = :$2" 2>/dev/null | grep -q "pid=$1,"
}

# Waits until instance inst (pid) listens on port; fails at once, with its
# log, if it exits first.
_coll_wait_listening() { # pid port inst what
  _end=$(( $(date +%s) + 15 ))
  while ! _coll_listening "$1" "$2"; do
    if _coll_gone "$1"; then
      echo "---- $T/$3.log" >&2; cat "$T/$3.log" >&2
      fail "$4: exited while starting"
    fi
    [ "$(date +%s)" -lt "$_end" ] || fail "$4: not listening on 127.0.0.1:$2 after 15 s"
    sleep 0.05
  done
}

# Starts a collector instance in the background with
# examples/collectors/<collector>/<config> and waits until it listens on
# 127.0.0.1:port (its own pid on that port).  A restarted instance keeps
# appending to $T/<inst>.out.  Sets COLL_PID.
coll_start() { # collector config inst port
  coll_require "$1"
  coll_render "$1" "$2" "$3" "$4"
  case $1 in
    rsyslog)
      _mods=$(dirname "$(find "$KPS_COLLECTORS_DIR/rsyslog/usr/lib" -name imtcp.so | head -n 1)")
      # -n: foreground; -M: the unpacked modules (the ossl driver among them).
      "$COLL_BIN" -n -f "$T/$3.conf" -M "$_mods" -i "$T/$3.rsyslog.pid" >> "$T/$3.log" 2>&1 </dev/null &
      ;;
    syslog-ng)
      _base=$KPS_COLLECTORS_DIR/syslog-ng/usr/lib/syslog-ng
      _mods=$(ls -d "$_base"/[0-9]* | head -n 1)
      # -F: foreground; -e: its own messages to stderr; the binary's RUNPATH
      # is /usr/lib/syslog-ng, hence LD_LIBRARY_PATH.
      LD_LIBRARY_PATH=$_base "$COLL_BIN" -F -e --no-caps -f "$T/$3.conf" --module-path="$_mods" \
        --persist-file="$T/$3.persist" --pidfile="$T/$3.syslog-ng.pid" --control="$T/$3.ctl" \
        >> "$T/$3.log" 2>&1 </dev/null &
      ;;
  esac
  COLL_PID=$!
  _PIDS="$_PIDS $COLL_PID"
  echo "$COLL_PID" > "$T/$3.pid"
  _coll_wait_listening "$COLL_PID" "$4" "$3" "$1 ($3, pid $COLL_PID)"
  ok "$1 ($3, $2) listening on 127.0.0.1:$4, pid $COLL_PID"
}

# Stops an instance with a signal (TERM: a clean stop; KILL: a crash) and
# waits until it has exited.
coll_stop() { # inst [signal]
  _pid=$(cat "$T/$1.pid")
  kill -"${2:-TERM}" "$_pid" 2>/dev/null || true
  wait_until 15 "collector $1 (pid $_pid) to exit" _coll_gone "$_pid"
  wait "$_pid" 2>/dev/null || true
}

# The ids of the records an instance stored ($T/<inst>.out), one per line,
# sorted: the last segment of request.uri ("/log/<id>").  Check the lines
# with coll_assert_json_lines first (a pipe hides jq's failure here).
coll_ids() { # file...
  cat "$@" | jq -r '.request.uri | sub("[?].*$"; "") | sub("^.*/"; "")' | sort
}

# Every stored line parses as one JSON object (jq), counted; fails naming
# the first line that does not.
coll_assert_json_lines() { # file expected-lines what
  _i=0
  while IFS= read -r _l; do
    _i=$((_i + 1))
    printf '%s' "$_l" | jq -e 'type == "object"' >/dev/null 2>&1 ||
      fail "$3: line $_i of $1 is not a JSON object: $(printf '%s' "$_l" | cut -c1-200)"
  done < "$1"
  assert_eq "$_i" "$2" "$3: lines in $(basename "$1"), each a JSON object"
}

# ---- the gateway in front --------------------------------------------------

# Starts an upstream and the gateway with kong.conf.example and one service
# per tcp-body-log config given: /log/<id> (the first), /log2/<id> (the
# second), ... each proxied to the upstream's /echo/<id> (bodies echoed).
# A config is YAML flow-mapping content, e.g. "host: 127.0.0.1, port: 5170".
# Request bodies of up to 1 MiB stay in memory (no file_buffered).  Sets GW,
# GW_PORT.
coll_gateway() { # plugin-config...
  GW=$T/gw
  GW_PORT=$(free_port)
  _up=$(free_port)
  start_upstream "$_up"
  kps_env "$GW"
  # A short flush deadline keeps the shutdown cases fast.
  export KONG_PLUGINSERVER_TCP_BODY_LOG_START_CMD="$KONG_PLUGINSERVER_TCP_BODY_LOG_START_CMD --shutdown-timeout 1000"
  export KONG_NGINX_HTTP_CLIENT_BODY_BUFFER_SIZE=1m
  printf '_format_version: "3.0"\nservices:\n' > "$T/kong.yml"
  _s=1
  for _cfg in "$@"; do
    _name=log; [ $_s = 1 ] || _name=log$_s
    cat >> "$T/kong.yml" <<YML
  - name: $_name
    url: http://127.0.0.1:$_up/echo
    routes:
      - name: $_name
        paths: ["/$_name"]
    plugins:
      - name: tcp-body-log
        config: { $_cfg }
YML
    _s=$((_s + 1))
  done
  start_gateway "$GW" --conf "$REPO/kong.conf.example" --yml "$T/kong.yml" --http-port "$GW_PORT" \
    --kong-version 3.9 --log-level info
}

# POSTs a text/plain body of `size` bytes ("a" repeated) to <route>/<id>
# (route: /log unless COLL_ROUTE says otherwise); fails unless the gateway
# answers 200.
coll_post() { # id size [curl args...]
  _id=$1; _size=$2; shift 2
  head -c "$_size" /dev/zero | tr '\0' a > "$T/req.body"
  _code=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' \
    --data-binary "@$T/req.body" "$@" "http://127.0.0.1:$GW_PORT${COLL_ROUTE:-/log}/$_id")
  [ "$_code" = 200 ] || fail "POST ${COLL_ROUTE:-/log}/$_id ($_size bytes): HTTP $_code"
}

# The server's --status, into $T/status.json; prints nothing.
coll_status() {
  "$KPS_SERVER" --status --socket "$GW/tcp-body-log.socket" > "$T/status.json" ||
    fail "--status of the server failed"
}

# jq on one sink of tcp-body-log in --status (after coll_status): the one
# whose name contains `match` (e.g. its port), or the first.
coll_sink_jq() { # filter [match]
  jq -r --arg m "${2:-}" '.Plugins["tcp-body-log"].sinks | to_entries
    | map(select(.key | contains($m))) | .[0].value | '"$1" "$T/status.json"
}

_coll_sent_is() { # n [match]
  coll_status
  [ "$(coll_sink_jq .records_sent "${2:-}")" = "$1" ]
}

# Waits until the sink's records_sent reaches n (the collector's TCP stack
# acknowledged them); the sink counts a record sent after the collector may
# already have stored it.
coll_wait_sent() { # n seconds [match]
  wait_until "$2" "records_sent = $1" _coll_sent_is "$1" "${3:-}"
  ok "records_sent = $1"
}
