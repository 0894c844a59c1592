#!/bin/sh
# The steps of docs/plugin-api.md, from a clean install to a plugin behind
# the gateway: install the SDK, build the example plugin (a copy outside the
# repository) with the CMake package and with pkg-config, load it from a
# plugins directory, drive it with the fake-Kong client, then through the
# gateway.  Usage: out_of_tree.sh <build dir> <drive_example> <kps-collector>
E2E_DIR=$(cd "$(dirname "$0")/../e2e" && pwd)
. "$E2E_DIR/tests/lib.sh"
E2E=$E2E_DIR                      # lib.sh derives these from $0: set them here
REPO=$(cd "$E2E_DIR/../.." && pwd)
require_tools nginx curl jq ss cmake pkg-config cc
BUILD=$1
DRIVE=$2
SDK=$T/sdk

# 1. Install the server and its SDK (binary, header, pkg-config, CMake package).
cmake --install "$BUILD" --prefix "$SDK" >/dev/null
[ -f "$SDK/include/kps_plugin.h" ] || fail "header not installed"
ok "SDK installed in $SDK"

# 2. The docs' worked example is the example plugin, byte for byte.
awk '/^## Worked example/{w=1} w && /^```c$/{on=1; next} /^```$/{on=0} on' "$REPO/docs/plugin-api.md" > "$T/doc.c"
cmp -s "$T/doc.c" "$REPO/examples/plugins/c-size-limit/c_size_limit.c" ||
  fail "docs/plugin-api.md's code differs from examples/plugins/c-size-limit/c_size_limit.c"
awk '/^```cmake$/{on=1; next} /^```$/{on=0} on' "$REPO/docs/plugin-api.md" > "$T/doc.cmake"
cmp -s "$T/doc.cmake" "$REPO/examples/plugins/c-size-limit/CMakeLists.txt" ||
  fail "docs/plugin-api.md's CMakeLists.txt differs from the example's"
ok "docs/plugin-api.md shows the example's files exactly"

# 3. Build it out of tree, from an empty folder, against the installed SDK only.
mkdir -p "$T/src"
cp "$T/doc.c" "$T/src/c_size_limit.c"
cp "$T/doc.cmake" "$T/src/CMakeLists.txt"
cmake -S "$T/src" -B "$T/build" -DCMAKE_PREFIX_PATH="$SDK" >/dev/null
cmake --build "$T/build" >/dev/null
[ -f "$T/build/c-size-limit.so" ] || fail "CMake did not build c-size-limit.so"
ok "built with find_package(kong-c-pluginserver) + kps_add_plugin"
mkdir -p "$T/pc"
# shellcheck disable=SC2046
cc $(PKG_CONFIG_PATH="$SDK/lib/pkgconfig" pkg-config --cflags --libs kong-c-pluginserver) \
  -o "$T/pc/c-size-limit.so" "$T/src/c_size_limit.c" || fail "pkg-config build failed"
ok "built with cc \$(pkg-config --cflags --libs kong-c-pluginserver)"

# 4. Both load; -dump names the plugin.
for dir in "$T/build" "$T/pc"; do
  name=$("$SDK/bin/kong-c-pluginserver" -plugins-directory "$dir" --plugin c-size-limit -dump | jq -r '.Plugins[0].Name')
  assert_eq "$name" c-size-limit "-dump of the plugin loaded from $dir"
done
mkdir -p "$T/plugins"
cp "$T/build/c-size-limit.so" "$T/plugins/"

# 5. The fake-Kong client drives it.
KPS_EXAMPLE_PLUGINS=$T/plugins "$DRIVE" example_exchange || fail "fake-Kong exchange failed"
ok "fake-Kong exchange through the loaded plugin"

# 6. Behind the gateway, with a plugin-named symlink as Kong 3.9 expects.
ln -s kong-c-pluginserver "$SDK/bin/c-size-limit"
GW=$T/gw
GW_PORT=$(free_port)
UP_PORT=$(free_port)
start_upstream "$UP_PORT"
cat > "$T/kong.conf" <<CONF
plugins = bundled,c-size-limit
pluginserver_names = c-size-limit
pluginserver_c_size_limit_start_cmd = $SDK/bin/c-size-limit -plugins-directory $T/plugins -kong-prefix $GW
pluginserver_c_size_limit_query_cmd = $SDK/bin/c-size-limit -plugins-directory $T/plugins -dump
CONF
cat > "$T/kong.yml" <<YML
_format_version: "3.0"
services:
  - name: echo
    url: http://127.0.0.1:$UP_PORT/echo
    routes:
      - name: limited
        paths: ["/limited"]
    plugins:
      - name: c-size-limit
        config: { allowed_payload_size: 100 }
YML
start_gateway "$GW" --conf "$T/kong.conf" --yml "$T/kong.yml" --http-port "$GW_PORT" --kong-version 3.9
code=$(http POST /limited --data-binary 'small body')
assert_eq "$code" 200 "small body proxied"
assert_grep "$T/headers" "^x-size-limit: 100" "the plugin's header reaches the client"
head -c 200 /dev/zero | tr '\0' 'a' > "$T/large"
code=$(http POST /limited --data-binary "@$T/large")
assert_eq "$code" 413 "large body refused by the plugin"
assert_jq "$T/body" '.message' 'Request size limit exceeded' "413 body from the plugin"
stop_gateway "$GW"
