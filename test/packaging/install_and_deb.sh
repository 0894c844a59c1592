#!/bin/sh
# `cmake --install` and `cpack -G DEB` produce the layout kong.conf.example
# expects: /usr/local/bin/kong-c-pluginserver with plugin-named symlinks, and
# each symlink answers Kong's query command (-dump) for its own plugin.
# Usage: install_and_deb.sh <build dir>
set -eu
BUILD=$1
T=$(mktemp -d /tmp/kps-pkg.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$T/root cmake --install "$BUILD" --prefix /usr/local >/dev/null
for p in tcp-body-log c-hello; do
  [ "$(readlink "$T/root/usr/local/bin/$p")" = kong-c-pluginserver ] || fail "$p is not a symlink to kong-c-pluginserver"
  name=$("$T/root/usr/local/bin/$p" -dump | jq -r '.Plugins[0].Name')
  [ "$name" = "$p" ] || fail "$p -dump names [$name]"
  echo "ok - /usr/local/bin/$p -> kong-c-pluginserver, -dump names $p"
done
[ -f "$T/root/usr/local/include/kps_plugin.h" ] || fail "public header not installed"
echo "ok - include/kps_plugin.h installed"

(cd "$BUILD" && cpack -G DEB -B "$T/deb" >/dev/null)
deb=$(ls "$T"/deb/kong-c-pluginserver_*_amd64.deb 2>/dev/null || ls "$T"/deb/*.deb)
dpkg-deb -c "$deb" > "$T/list"
for f in ./usr/local/bin/kong-c-pluginserver ./usr/local/bin/tcp-body-log ./usr/local/bin/c-hello; do
  grep -q " $f" "$T/list" || fail "$f missing from the .deb"
done
dpkg-deb -f "$deb" Depends | grep -q libuv1 || fail "Depends lacks libuv1"
echo "ok - $(basename "$deb") holds the binary and both symlinks under /usr/local/bin"
