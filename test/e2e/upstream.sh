#!/bin/sh
# A real upstream for the gateway tests: a separate nginx instance.
#
#   upstream.sh start <workdir> [--port P] [--workers N]
#   upstream.sh stop <workdir>
#
# Endpoints (every response carries "X-Upstream: upstream"):
#   /echo, /echo/*  request body back, same Content-Type (application/octet-stream
#               when none), any method
#   /json       {"ok":true,"path":...,"method":...,"args":{...}}
#   /multi      text "multi\n" with a repeated response header X-Up-Multi: one, two
#   /bytes/N    N bytes ("0123456789" repeated)
#   /1k         1024 bytes (benchmarks)
#   /status/N   empty body with status N
#   anything else: 200 "ok\n"
# For a 502, point a service at a port nothing listens on.
set -eu

MODDIR=/usr/lib/nginx/modules
die() { echo "upstream.sh: $*" >&2; exit 1; }

cmd_start() {
  workdir=$1; shift
  port=18080; workers=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port=$2; shift 2 ;;
      --workers) workers=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  mkdir -p "$workdir/logs" "$workdir/tmp"
  workdir=$(cd "$workdir" && pwd)
  user_line=""
  [ "$(id -u)" = 0 ] && user_line="user root $(id -gn root);"

  cat > "$workdir/nginx.conf" <<EOF
load_module $MODDIR/ndk_http_module.so;
load_module $MODDIR/ngx_http_lua_module.so;
$user_line
worker_processes $workers;
daemon on;
pid $workdir/logs/nginx.pid;
error_log $workdir/logs/error.log notice;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $workdir/tmp/client_body;
  proxy_temp_path $workdir/tmp/proxy;
  fastcgi_temp_path $workdir/tmp/fastcgi;
  uwsgi_temp_path $workdir/tmp/uwsgi;
  scgi_temp_path $workdir/tmp/scgi;
  client_max_body_size 0;
  client_body_buffer_size 16m;
  keepalive_requests 100000;
  default_type text/plain;

  server {
    listen 127.0.0.1:$port reuseport;
    add_header X-Upstream upstream always;

    location /echo {
      content_by_lua_block {
        ngx.req.read_body()
        local body = ngx.req.get_body_data()
        if not body then
          local path = ngx.req.get_body_file()
          if path then
            local f = io.open(path, "rb")
            body = f:read("*a")
            f:close()
          end
        end
        ngx.header["Content-Type"] = ngx.var.content_type or "application/octet-stream"
        ngx.print(body or "")
      }
    }
    location = /json {
      content_by_lua_block {
        local cjson = require "cjson"
        ngx.header["Content-Type"] = "application/json"
        ngx.print(cjson.encode({ ok = true, path = ngx.var.uri,
                                 method = ngx.req.get_method(),
                                 args = ngx.req.get_uri_args() }))
      }
    }
    location = /multi {
      content_by_lua_block {
        ngx.header["X-Up-Multi"] = { "one", "two" }
        ngx.print("multi\\n")
      }
    }
    location ~ ^/bytes/(\d+)$ {
      content_by_lua_block {
        local n = tonumber(ngx.var[1])
        local unit = "0123456789"
        local s = string.rep(unit, math.floor(n / 10)) .. unit:sub(1, n % 10)
        ngx.header["Content-Type"] = "application/octet-stream"
        ngx.print(s)
      }
    }
    location = /1k {
      content_by_lua_block {
        ngx.header["Content-Type"] = "application/octet-stream"
        ngx.print(string.rep("k", 1024))
      }
    }
    location ~ ^/status/(\d+)$ {
      content_by_lua_block { ngx.exit(tonumber(ngx.var[1])) }
    }
    location / {
      return 200 "ok\\n";
    }
  }
}
EOF
  nginx -p "$workdir" -c "$workdir/nginx.conf" || die "nginx failed to start"
  n=0
  until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
    n=$((n + 1)); [ $n -lt 100 ] || die "upstream not answering on port $port"
    sleep 0.1
  done
  echo "upstream: http://127.0.0.1:$port"
}

cmd_stop() {
  workdir=$1
  [ -f "$workdir/logs/nginx.pid" ] || return 0
  pid=$(cat "$workdir/logs/nginx.pid")
  kill -0 "$pid" 2>/dev/null || return 0
  workers=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
  kill -QUIT "$pid" 2>/dev/null || true
  n=0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  for w in $workers; do kill -0 "$w" 2>/dev/null && kill -KILL "$w" 2>/dev/null || true; done
  return 0
}

[ $# -ge 2 ] || { sed -n '2,18p' "$0"; exit 2; }
action=$1; shift
case "$action" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$1" ;;
  *) die "unknown action $action" ;;
esac
