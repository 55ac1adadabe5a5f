#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test, then the suite again
# under AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer, then the fuzz
# targets (corpus replay + SLUICE_FUZZ_SECONDS, default 15, of fuzzing each).
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build -j"$jobs"
meson test -C build --print-errorlogs

# Sanitizer builds run the whole suite again. ASan+UBSan at -O0: instrumented -O1 compiles 4x
# slower here and the suite is fast either way. TSan at -O1 (it is slow at -O0); -Wno-tsan: Asio's
# atomic_thread_fence, which TSan does not model, would warn in every Asio translation unit.
sanitized() {  # sanitized DIR SANITIZERS OPTIMIZATION [CXXFLAGS]
  if [ ! -f "$1/build.ninja" ]; then
    meson setup "$1" -Dbuildtype=debug -Doptimization="$3" -Db_sanitize="$2" -Db_lundef=false -Dbench=disabled \
      ${4:+-Dcpp_args="$4"} >/dev/null
  fi
  ninja -C "$1" -j"$jobs"
  meson test -C "$1" --print-errorlogs --no-suite static
}
if [ "${1:-}" != "--no-sanitize" ]; then
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    sanitized build-asan address,undefined 0
  TSAN_OPTIONS=halt_on_error=1 sanitized build-tsan thread 1 -Wno-tsan
  # The parsers under libFuzzer (clang, ASan+UBSan): replay the seed corpus and every saved
  # regression, then fuzz each target for a bounded time.
  scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-15}"
fi
echo "test.sh: all tests passed"
