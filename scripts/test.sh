#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test, then the suite again
# under AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer, then the fuzz
# targets (corpus replay + SLUICE_FUZZ_SECONDS, default 10, of fuzzing each).
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
# Every package at once, before anything runs in the background: clang and its sanitizer and
# fuzzer runtimes too (the sanitizer builds and scripts/fuzz.sh use them).
scripts/deps.sh clang-14 libclang-rt-14-dev
# A failed step stops the suites and checks still running in the background, so that the log
# ends with the step that failed, not with their errors as the checkout goes away under them.
failed_at=""
trap 'failed_at=${failed_at:-$LINENO}' ERR
trap 'status=$?; if [ $status -ne 0 ]; then
        echo "test.sh: failed (exit $status) at line ${failed_at:-?} of scripts/test.sh" >&2
        pkill -P $$ 2>/dev/null || true; wait 2>/dev/null || true
      fi' EXIT
jobs=$(nproc)

# GCC's garbage collector: first collection at 1 GB of heap instead of 128 MB, then at 3x the
# live heap. Same code, 10-15% less compiler time (test_stream_tcp.cpp under ASan 21.9 -> 17.5 s,
# sales.cpp 52 -> 47 s) for up to ~3.5 GB per compiler: only with 4 GB of available memory per job.
gcc_args=()
if c++ --version | grep -q 'Free Software Foundation' &&
   [ "$(awk '/MemAvailable/ {print $2}' /proc/meminfo)" -ge $((jobs * 4 * 1024 * 1024)) ]; then
  gcc_args=(--param=ggc-min-expand=200 --param=ggc-min-heapsize=1048576)
fi
as_list() { local IFS=,; local a=("$@"); a=("${a[@]/#/\'}"); a=("${a[@]/%/\'}"); echo "[${a[*]}]"; }

# Each suite's tests run while the next build compiles: tests leave a core idle most of the time,
# and compiling is what takes the time on two cores. `wait` stops the script on a failed suite.
# SLUICE_BUILD_ARGS: extra options for build/, split at spaces (.ci/run: -O1, benchmarks at -O0).
if [ ! -f build/build.ninja ]; then
  meson setup build ${SLUICE_BUILD_ARGS:-} ${gcc_args[0]:+-Dcpp_args="$(as_list "${gcc_args[@]}")"} >/dev/null
fi
ninja -C build -j"$jobs"
if [ "${1:-}" = "--no-sanitize" ]; then
  meson test -C build --print-errorlogs
  scripts/consumers.sh
  echo "test.sh: all tests passed"
  exit 0
fi
meson test -C build --print-errorlogs --no-rebuild &
tests=$!
# A host program built against sluice from a Meson subproject, pkg-config, the CMake package and
# the CMake source tree: ~7 s, one small compile a way, beside the suite while ASan compiles.
scripts/consumers.sh &
consumers=$!

# Sanitizer builds run the whole suite again, both with clang at -O0: clang compiles these
# template-heavy sources in about half g++'s time (test_ops.cpp under ASan: 10 vs 19 s; sales.cpp
# under TSan: 15 s, against 30 s for g++ at -O1), and the suite is fast enough either way (TSan's
# at -O0: 77 s). The plain build stays on g++, so both compilers build everything. -g1: line
# tables only (reports keep file:line), 10% less compile time than -g.
sanitized_build() {  # sanitized_build DIR SANITIZERS OPTIMIZATION CXXFLAGS [CXX [MESON-OPTION...]]
  if [ ! -f "$1/build.ninja" ]; then
    CXX=${5:-c++} meson setup "$1" -Dbuildtype=debug -Doptimization="$3" -Db_sanitize="$2" -Db_lundef=false \
      -Dbench=disabled -Dcpp_args="$4" "${@:6}" >/dev/null
  fi
  ninja -C "$1" -j"$jobs"
}
sanitized_build build-asan address,undefined 0 "$(as_list -g1)" clang++-14
wait "$tests"
wait "$consumers"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  meson test -C build-asan --print-errorlogs --no-suite static --no-rebuild &
tests=$!
# No Kafka under TSan: librdkafka starts its threads with C11 thrd_create, which clang 14's TSan
# does not intercept, so the first malloc on such a thread crashes in TSan's allocator (a
# SIGSEGV under getaddrinfo, seen here). The Kafka tests run in the plain and ASan builds; the
# source runs on the caller's thread, and the stream runner it feeds is under TSan with the rest.
sanitized_build build-tsan thread 0 "$(as_list -g1)" clang++-14 -Dkafka=disabled
wait "$tests"
TSAN_OPTIONS=halt_on_error=1 meson test -C build-tsan --print-errorlogs --no-suite static --no-rebuild &
tests=$!
# The parsers under libFuzzer (clang, ASan+UBSan): replay the seed corpus and every saved
# regression, then fuzz each target for a bounded time.
scripts/fuzz.sh --build-only
wait "$tests"
scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-10}"
echo "test.sh: all tests passed"
