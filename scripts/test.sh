#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test, then the suite again
# under AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer.  Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build -j"$jobs"
meson test -C build --print-errorlogs

# Sanitizer builds run the whole suite again: -O1 keeps them quick to build and still precise.
sanitized() {  # sanitized DIR SANITIZERS
  if [ ! -f "$1/build.ninja" ]; then
    meson setup "$1" -Dbuildtype=debug -Doptimization=1 -Db_sanitize="$2" -Db_lundef=false -Dbench=disabled >/dev/null
  fi
  ninja -C "$1" -j"$jobs"
  meson test -C "$1" --print-errorlogs --no-suite static
}
if [ "${1:-}" != "--no-sanitize" ]; then
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    sanitized build-asan address,undefined
  TSAN_OPTIONS=halt_on_error=1 sanitized build-tsan thread
fi
echo "test.sh: all tests passed"
