#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test twice: built by g++
# under AddressSanitizer, and by clang under ThreadSanitizer + UndefinedBehaviorSanitizer; then
# the fuzz targets (corpus replay + SLUICE_FUZZ_SECONDS, default 10, of fuzzing each).
# Usage: scripts/test.sh [--no-sanitize]   (--no-sanitize: one plain -O3 build in build/ instead)
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
if [ "${1:-}" = "--no-sanitize" ]; then  # a developer's quick check: build/, the demo's build (-O3)
  if [ ! -f build/build.ninja ]; then
    meson setup build ${SLUICE_BUILD_ARGS:-} ${gcc_args[0]:+-Dcpp_args="$(as_list "${gcc_args[@]}")"} >/dev/null
  fi
  ninja -C build -j"$jobs"
  meson test -C build --print-errorlogs
  scripts/consumers.sh
  echo "test.sh: all tests passed"
  exit 0
fi

# Two builds run every suite, one with each compiler, each under sanitizers, at -O0: g++ with
# AddressSanitizer, clang with ThreadSanitizer and UndefinedBehaviorSanitizer. (Until 2026-12-05
# three did: a plain g++ build, clang ASan+UBSan, clang TSan. The plain run found nothing the
# sanitized ones could not, and g++'s UBSan doubles its compile time (test_chain.cpp: 17 s plain,
# 25 s with ASan, 38 s with ASan+UBSan) where clang's costs little, so UBSan moved to clang.)
# -g1: line tables only (reports keep file:line), 10% less compile time than -g.
# SLUICE_BUILD_ARGS: extra options for the g++ build, split at spaces (.ci/run: -Dkafka=enabled).
sanitized_build() {  # sanitized_build DIR CXX SANITIZER CXXFLAGS-LIST [MESON-OPTION...]
  if [ ! -f "$1/build.ninja" ]; then
    CXX=$2 meson setup "$1" -Dbuildtype=debug -Doptimization=0 -Db_sanitize="$3" -Db_lundef=false \
      -Dcpp_args="$4" "${@:5}" >/dev/null
  fi
  ninja -C "$1" -j"$jobs"
}
# Every target, the benchmark programs too (at -O0: CI only checks that they compile and link).
# shellcheck disable=SC2086
sanitized_build build-gcc-asan c++ address "$(as_list -g1 "${gcc_args[@]}")" -Dbench_unoptimized=true \
  ${SLUICE_BUILD_ARGS:-}
ASAN_OPTIONS=detect_leaks=1 meson test -C build-gcc-asan --print-errorlogs --no-rebuild &
tests=$!
# A host program built against sluice from a Meson subproject, pkg-config, the CMake package and
# the CMake source tree: ~7 s, one small compile a way, beside the suite while TSan compiles.
scripts/consumers.sh &
consumers=$!
# No Kafka under TSan: librdkafka starts its threads with C11 thrd_create, which clang 14's TSan
# does not intercept, so the first malloc on such a thread crashes in TSan's allocator (a
# SIGSEGV under getaddrinfo, seen here). The Kafka tests run in the ASan build; the source runs
# on the caller's thread, and the stream runner it feeds is under TSan with the rest.
# UBSan beside TSan: -fsanitize=undefined by hand (meson's b_sanitize has no thread,undefined),
# without its vptr check: that one probes memory with pipe(2) (IsAccessibleMemoryRange), which
# TSan then reports as a race with any other thread's open or close of the same descriptor.
ubsan=(-fsanitize=undefined -fno-sanitize=vptr)
sanitized_build build-clang-tsan clang++-14 thread "$(as_list -g1 "${ubsan[@]}")" -Dbench=disabled \
  -Dkafka=disabled -Dcpp_link_args="$(as_list "${ubsan[@]}")"
wait "$tests"
wait "$consumers"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 TSAN_OPTIONS=halt_on_error=1 \
  meson test -C build-clang-tsan --print-errorlogs --no-suite static --no-rebuild &
tests=$!
# The parsers under libFuzzer (clang, ASan+UBSan): replay the seed corpus and every saved
# regression, then fuzz each target for a bounded time.
scripts/fuzz.sh --build-only
wait "$tests"
scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-10}"
echo "test.sh: all tests passed"
