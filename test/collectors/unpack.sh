#!/bin/sh
# unpack.sh [DIR]: the real collectors of the collector tests, from Debian 12,
# unpacked and never installed.  syslog-ng and rsyslog conflict with each
# other and their packages would start system daemons, so each is fetched
# with `apt-get download` and extracted with `dpkg -x` into
#   DIR/syslog-ng/   syslog-ng-core
#   DIR/rsyslog/     rsyslog and rsyslog-openssl (the "ossl" TLS driver)
# (DIR: $KPS_COLLECTORS_DIR, default /opt/kps-collectors).  Only their
# libraries are installed as packages.  Nothing is started.  Idempotent: a
# collector already unpacked (DIR/NAME/.unpacked lists its .deb files) is
# left alone, and with everything present no package index is read (fast);
# remove DIR/NAME to unpack it afresh.  Run as root
# (.ci/install-deps runs it).
set -eu
DIR=${1:-${KPS_COLLECTORS_DIR:-/opt/kps-collectors}}
export DEBIAN_FRONTEND=noninteractive

# The libraries the two daemons and their modules link (apt-cache depends
# syslog-ng-core rsyslog rsyslog-openssl, the daemon packages themselves and
# init-script helpers left out).
libs="libc6 libcap2 libglib2.0-0 libivykis0 libjson-c5 libnet1 libpcre3 libssl3 libsystemd0 libwrap0
      libestr0 libfastjson4 liblognorm5 libuuid1 libzstd1 zlib1g"

updated=0
apt_update() {
  [ "$updated" = 1 ] && return 0
  apt-get update -qq
  updated=1
}

missing=""
for p in $libs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt_update
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# unpack NAME PROGRAM PACKAGES...: DIR/NAME holds PACKAGES, unless PROGRAM
# (a path inside it) and the stamp are there already.
unpack() {
  name=$1; prog=$2; shift 2
  dest=$DIR/$name
  if [ -x "$dest/$prog" ] && [ -f "$dest/.unpacked" ]; then
    return 0
  fi
  apt_update
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/kps-unpack.XXXXXX")
  chmod 755 "$tmp"  # apt's _apt user writes the download there
  (cd "$tmp" && apt-get download -qq "$@" 2>&1 | grep -v "unsandboxed as root" || true)
  for p in "$@"; do
    ls "$tmp/${p}_"*.deb >/dev/null 2>&1 || { rm -rf "$tmp"; echo "unpack.sh: apt-get download $p failed" >&2; exit 1; }
  done
  rm -rf "$dest.new"
  mkdir -p "$dest.new"
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$dest.new"; done
  for deb in "$tmp"/*.deb; do basename "$deb"; done > "$dest.new/.unpacked"
  rm -rf "$tmp" "$dest"
  mv "$dest.new" "$dest"
  echo "unpacked $(tr '\n' ' ' < "$dest/.unpacked")into $dest"
}

mkdir -p "$DIR"
unpack syslog-ng usr/sbin/syslog-ng syslog-ng-core
unpack rsyslog usr/sbin/rsyslogd rsyslog rsyslog-openssl
[ -n "$(find "$DIR/rsyslog/usr/lib" -name lmnsd_ossl.so 2>/dev/null)" ] ||
  { echo "unpack.sh: rsyslog's ossl driver missing in $DIR/rsyslog" >&2; exit 1; }
