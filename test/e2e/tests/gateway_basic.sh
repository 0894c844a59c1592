#!/bin/sh
# The gateway on its own (no plugin server): routing with strip_path, Kong's
# response headers and error bodies, the bundled Lua plugin "deny", upstream
# 502, and start-up failures Kong also has (unknown plugin, missing
# query_command, bad plugin info), including KONG_* environment overrides.
. "$(dirname "$0")/lib.sh"
require_tools nginx curl jq ss

GW=$T/gw
GW_PORT=$(free_port); UP_PORT=$(free_port); DEAD_PORT=$(free_port)
start_upstream "$UP_PORT"

echo "plugins = bundled" > "$T/kong.conf"
cat > "$T/kong.yml" <<EOF
_format_version: "3.0"
services:
  - name: up
    url: http://127.0.0.1:$UP_PORT
    routes:
      - name: api
        paths: ["/api"]
      - name: denied
        paths: ["/deny"]
        plugins:
          - name: deny
            config: { status: 451, message: "not here" }
  - name: dead
    url: http://127.0.0.1:$DEAD_PORT/base
    routes:
      - name: dead
        paths: ["/dead"]
EOF
start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version 3.9

code=$(http GET '/api/json?a=1')
assert_eq "$code" 200 "proxied"
assert_jq "$T/body" '[.path, .args.a]|join(" ")' "/json 1" "strip_path removes the route prefix, query kept"
assert_grep "$T/headers" "^Via: 1.1 kong/3.9.1" "Via"
assert_grep "$T/headers" "^X-Kong-Upstream-Latency: " "X-Kong-Upstream-Latency"
assert_grep "$T/headers" "^X-Kong-Proxy-Latency: " "X-Kong-Proxy-Latency"
assert_grep "$T/headers" "^X-Kong-Request-Id: [0-9a-f]\{32\}" "X-Kong-Request-Id"

code=$(http GET /api/multi)
assert_eq "$(grep -c '^X-Up-Multi:' "$T/headers")" 2 "repeated upstream header passes through"

code=$(http GET /nowhere)
assert_eq "$code" 404 "no route"
assert_jq "$T/body" '.message' 'no Route matched with those values' "404 body"
assert_jq "$T/body" '.request_id|length' '32' "error body carries the request id"
assert_grep "$T/headers" "^Server: kong/3.9.1" "Server header on Kong's own responses"
assert_grep "$T/headers" "^X-Kong-Response-Latency: " "X-Kong-Response-Latency"

code=$(http GET /deny)
assert_eq "$code" 451 "deny plugin status from config"
assert_jq "$T/body" '.message' 'not here' "deny plugin body"

code=$(http GET /dead)
assert_eq "$code" 502 "closed upstream port"
assert_jq "$T/body" '.message' 'An invalid response was received from the upstream server' "502 body"

stop_gateway "$GW"

# --- start-up failures
expect_start_failure() { # what pattern [env...] -- conf lines
  _what=$1; _pat=$2; shift 2
  _gw=$T/fail-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
  mkdir -p "$_gw"
  if env "$@" "$E2E/gateway.sh" start "$_gw" --conf "$T/bad.conf" --yml "$T/kong.yml" \
       --http-port "$(free_port)" --ready-timeout 5 > "$_gw.out" 2>&1; then
    _GATEWAYS="$_GATEWAYS $_gw"
    fail "$_what: the gateway started"
  fi
  grep -q -- "$_pat" "$_gw.out" || { cat "$_gw.out"; fail "$_what: no [$_pat] in the output"; }
  ok "$_what"
}

echo "plugins = bundled,nope" > "$T/bad.conf"
expect_start_failure "unknown plugin refused" "plugin 'nope' is enabled but not installed" X=1

echo "plugins = bundled" > "$T/bad.conf"
expect_start_failure "KONG_PLUGINS overrides kong.conf" "plugin 'other' is enabled but not installed" \
  KONG_PLUGINS=bundled,other

printf 'plugins = bundled\npluginserver_names = c-x\n' > "$T/bad.conf"
expect_start_failure "3.9 requires a query command" "query_command undefined for pluginserver c-x" X=1

printf 'plugins = bundled\npluginserver_names = c-x\npluginserver_c_x_query_cmd = echo not json\n' > "$T/bad.conf"
expect_start_failure "bad plugin info JSON" "failed decoding plugin info" X=1

info='[{"Name":"c-x","Version":"1.0.0.0","Priority":1,"Phases":["access"],"Schema":{"name":"c-x","fields":[{"config":{"type":"record","fields":[]}}]}}]'
printf 'plugins = bundled,c-x\npluginserver_names = c-x\n' > "$T/bad.conf"
expect_start_failure "bad Version refused" "Version of c-x must be a string like" \
  "KONG_PLUGINSERVER_C_X_QUERY_CMD=echo '$info'"

# --- plugin configs Kong's schema refuses stop start-up, as `kong start`
# does with such a kong.yml (gateway/schema.lua: kong/db/schema/init.lua)
bad_yml() { # plugin config-flow
  cat > "$T/kong.yml" <<EOF
_format_version: "3.0"
services:
  - name: up
    url: http://127.0.0.1:$UP_PORT
    routes:
      - name: api
        paths: ["/api"]
        plugins:
          - name: $1
            config: $2
EOF
}
echo "plugins = bundled" > "$T/bad.conf"
bad_yml deny '{ status: 700 }'
expect_start_failure "bundled plugin: config out of range" "in 'status': value should be between 100 and 599" X=1
bad_yml deny '{ status: 403, colour: red }'
expect_start_failure "bundled plugin: unknown config key" "in 'colour': unknown field" X=1

info='[{"Name":"c-x","Version":"1.0.0","Priority":1,"Phases":["access"],"Schema":{"name":"c-x","fields":[{"config":{"type":"record","fields":[{"port":{"type":"integer","required":true,"between":[1,65535]}},{"ratio":{"type":"number","between":[0,1]}},{"cert":{"type":"string","not_match":"%z"}},{"key":{"type":"string"}}]}}],"entity_checks":[{"mutually_required":["config.cert","config.key"]}]}}]'
printf 'plugins = bundled,c-x\npluginserver_names = c-x\n' > "$T/bad.conf"
bad_yml c-x '{ port: 70000 }'
expect_start_failure "external plugin: integer out of range" "in 'port': value should be between 1 and 65535" \
  "KONG_PLUGINSERVER_C_X_QUERY_CMD=echo '$info'"
bad_yml c-x '{ port: 80.5 }'
expect_start_failure "external plugin: fraction in an integer" "in 'port': expected an integer" \
  "KONG_PLUGINSERVER_C_X_QUERY_CMD=echo '$info'"
bad_yml c-x '{ ratio: 0.5 }'
expect_start_failure "external plugin: required field missing" "in 'port': required field missing" \
  "KONG_PLUGINSERVER_C_X_QUERY_CMD=echo '$info'"
bad_yml c-x '{ port: 80, cert: /etc/c.pem }'
expect_start_failure "external plugin: entity check of the plugin schema" \
  "all or none of these fields must be set: 'config.cert', 'config.key'" \
  "KONG_PLUGINSERVER_C_X_QUERY_CMD=echo '$info'"
bad_yml c-x '{ port: .nan }'
expect_start_failure "external plugin: NaN in an integer" "in 'port': expected an integer" \
  "KONG_PLUGINSERVER_C_X_QUERY_CMD=echo '$info'"
