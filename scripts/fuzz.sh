#!/usr/bin/env bash
# The fuzz check: installs clang 14 and the fuzzer runtime if missing, builds the libFuzzer
# targets of tests/fuzz in build-fuzz, replays each target's seed corpus and saved regressions,
# then fuzzes each target for SECONDS (default 15; 0: replay only), as many at a time as there
# are cores. Fails if any input crashes a target or breaks one of its properties. New corpus
# entries and crash inputs go to build-fuzz/fuzz-run/, never into the repository.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   or   scripts/fuzz.sh --build-only
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=false
if [ "${1:-}" = "--build-only" ]; then
  build_only=true
  shift
fi
seconds=${1:-15}
shift || true

scripts/deps.sh clang-14 libclang-rt-14-dev  # the build packages, and clang with its fuzzer runtime

if [ ! -f build-fuzz/build.ninja ]; then
  CXX=clang++-14 meson setup build-fuzz -Dfuzz=true -Dbench=disabled -Dbuildtype=debug -Doptimization=1 \
    -Dcpp_args=-g1 -Dexamples=false -Dtests=false >/dev/null  # -g1: line tables, enough for reports
fi
jobs=$(nproc)
ninja -C build-fuzz -j"$jobs" fuzz
if $build_only; then
  exit 0
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in tests/fuzz/fuzz_*.cpp; do
    targets+=("$(basename "$src" .cpp)")
  done
fi
run=build-fuzz/fuzz-run
mkdir -p "$run"

# fuzz_one TARGET: replay its seeds and regressions, then fuzz it; output in $run/TARGET.log.
fuzz_one() {
  local t=$1
  local bin=build-fuzz/tests/fuzz/$t dict=tests/fuzz/$t.dict
  local dirs=(tests/fuzz/corpus/"$t")
  if [ -d tests/fuzz/regressions/"$t" ]; then
    dirs+=(tests/fuzz/regressions/"$t")
  fi
  mkdir -p "$run/corpus/$t" "$run/artifacts/$t"
  # A fixed seed by default: the same inputs in every run, so a gate does not turn red on a
  # finding that another run would not meet; long runs by hand pick their own (SLUICE_FUZZ_SEED=0: random).
  local opts=(-artifact_prefix="$run/artifacts/$t/" -timeout=20 -rss_limit_mb=2048 -seed="${SLUICE_FUZZ_SEED:-1}")
  if [ -f "$dict" ]; then
    opts+=(-dict="$dict")
  fi
  local inputs=()
  for d in "${dirs[@]}"; do
    for f in "$d"/*; do
      if [ -f "$f" ]; then
        inputs+=("$f")
      fi
    done
  done
  "$bin" "${opts[@]}" "${inputs[@]}"
  if [ "$seconds" -gt 0 ]; then
    # The first directory receives the new inputs: a scratch corpus kept in the build directory.
    nice -n 19 "$bin" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 "$run/corpus/$t" "${dirs[@]}"
  fi
}

# finish PID TARGET: wait for a target's job and say how it went.
finish() {
  if wait "$1"; then
    echo "fuzz: $2 ok"
  else
    echo "fuzz: $2 FAILED (all its output: $run/$2.log)"
    tail -40 "$run/$2.log"
    status=1
  fi
}

rm -rf "$run/artifacts"
status=0
pids=()
names=()
for t in "${targets[@]}"; do
  (set -e; fuzz_one "$t") >"$run/$t.log" 2>&1 &
  pids+=($!)
  names+=("$t")
  if [ ${#pids[@]} -ge "$jobs" ]; then
    finish "${pids[0]}" "${names[0]}"
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  finish "${pids[$i]}" "${names[$i]}"
done
if [ "$status" -ne 0 ]; then
  echo "fuzz: crash inputs are in $run/artifacts/ (save one under tests/fuzz/regressions/TARGET/)"
  exit 1
fi
echo "fuzz: all targets passed (${seconds}s each)"
