#!/usr/bin/env bash
# The consumer check: builds and runs tests/consumers/host.cpp (which checks its own answer)
# against sluice in each way a project can use it, and fails if any way fails:
#   1. meson, sluice as a subproject (the source tree linked into subprojects/)
#   2. pkg-config --cflags --libs sluice, from a fresh install into a temporary prefix
#   3. CMake, find_package(sluice CONFIG REQUIRED) from that prefix (CMAKE_PREFIX_PATH)
#   4. CMake over the source tree (FetchContent with SOURCE_SUBDIR cmake: add_subdirectory of cmake/)
# The install comes from its own build directory with no tests, examples or benchmarks: sluice
# is header-only, so `meson install` compiles nothing. One compile of host.cpp a way, no
# optimisation. Everything is under a temporary directory, removed at the end.
# Usage: scripts/consumers.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
host="$root/tests/consumers"
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-consumers.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Everything runs from the temporary directory: meson's CMake module runs `cmake
# --system-information`, which writes a scratch directory into the current one, and test.sh runs
# this script beside the sanitizer build's `meson setup` in the source tree: two of those in one
# directory at once clobber each other's (a CI run failed so: "CMAKE_CXX_COMPILER not set").
cd "$work"
# An installed sluice elsewhere on the machine must not stand in for the one under test.
unset PKG_CONFIG_PATH CMAKE_PREFIX_PATH

# step NAME COMMAND...: runs COMMAND with its output in a log, shown only when it fails.
step() {
  local name=$1 log="$work/$1.log"
  shift
  if ! "$@" >>"$log" 2>&1; then
    echo "consumers.sh: $name failed: $*" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

step install meson setup "$work/sluice-build" "$root" --prefix="$work/prefix" -Dtests=false -Dexamples=false -Dbench=disabled
step install meson install -C "$work/sluice-build"
pc_dir=$(dirname "$(find "$work/prefix" -name sluice.pc)")
version=$(PKG_CONFIG_PATH=$pc_dir pkg-config --modversion sluice)

# 1. meson subproject (--force-fallback-for: never an installed sluice found by pkg-config or CMake)
mkdir -p "$work/meson-subproject/subprojects"
cp "$host/meson.build" "$host/host.cpp" "$work/meson-subproject/"
ln -s "$root" "$work/meson-subproject/subprojects/sluice"
step meson-subproject meson setup "$work/meson-subproject/build" "$work/meson-subproject" \
  --force-fallback-for=sluice -Dbuildtype=plain
step meson-subproject ninja -C "$work/meson-subproject/build"
step meson-subproject "$work/meson-subproject/build/host"

# 2. pkg-config: the flags straight onto the compiler's command line; the standard is the host's
flags=$(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs sluice)
# shellcheck disable=SC2086  # the flags are words
step pkg-config c++ -std=c++20 "$host/host.cpp" $flags -o "$work/pkg-config-host"
step pkg-config "$work/pkg-config-host"

# 3. CMake, the installed package; it must come from the prefix, at the version meson installed
step cmake-installed cmake -S "$host" -B "$work/cmake-installed" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DSLUICE_REQUIRED_VERSION="$version"
step cmake-installed grep -qx "sluice_DIR:PATH=$work/prefix/lib/cmake/sluice" "$work/cmake-installed/CMakeCache.txt"
step cmake-installed cmake --build "$work/cmake-installed"
step cmake-installed "$work/cmake-installed/host"

# 4. CMake, the source tree
step cmake-source cmake -S "$host" -B "$work/cmake-source" -G Ninja -DSLUICE_SOURCE_DIR="$root"
step cmake-source cmake --build "$work/cmake-source"
step cmake-source "$work/cmake-source/host"

echo "consumers.sh: sluice $version builds and runs from a meson subproject, pkg-config, CMake find_package and CMake over the source tree"
