#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test, then the suite again
# under AddressSanitizer + UndefinedBehaviorSanitizer.  Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build -j"$jobs"
meson test -C build --print-errorlogs

if [ "${1:-}" != "--no-sanitize" ]; then
  if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
      -Dbench=disabled >/dev/null
  fi
  ninja -C build-asan -j"$jobs"
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    meson test -C build-asan --print-errorlogs
fi
echo "test.sh: all tests passed"
