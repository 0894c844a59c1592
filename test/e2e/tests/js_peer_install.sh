#!/bin/sh
# Makes sure bench/peers/js has kong-pdk installed from its lockfile.
# `npm ci` works offline when the npm cache already has the packages
# (--prefer-offline); otherwise it needs the npm registry.
. "$(dirname "$0")/lib.sh"
require_tools node npm

want=$(jq -r '.packages["node_modules/kong-pdk"].version' "$JS_PEER/package-lock.json")
have=$(jq -r '.version' "$JS_PEER/node_modules/kong-pdk/package.json" 2>/dev/null || echo none)
if [ "$have" = "$want" ] && [ -f "$JS_PEER/node_modules/@msgpack/msgpack/package.json" ]; then
  ok "kong-pdk $have already installed in $JS_PEER"
  exit 0
fi
(cd "$JS_PEER" && npm ci --prefer-offline --no-audit --no-fund) ||
  fail "npm ci failed in $JS_PEER: it needs the npm registry or an npm cache holding kong-pdk@$want"
have=$(jq -r '.version' "$JS_PEER/node_modules/kong-pdk/package.json")
assert_eq "$have" "$want" "kong-pdk installed from the lockfile"
