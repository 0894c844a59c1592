#!/bin/sh
# The whole test suite, from a clean clone: install dependencies, build,
# run every ctest test.  Usage: test/run.sh [extra cmake -D options]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
"$ROOT/.ci/install-deps"
if [ -f "$ROOT/bench/peers/js/package-lock.json" ]; then
  (cd "$ROOT/bench/peers/js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cd "$BUILD"
ctest --output-on-failure -j2
