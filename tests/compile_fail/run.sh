#!/bin/sh
# Compile-failure tests for the flow API. Every .cpp beside this script starts with a line
#   // expect: <substring of the static_assert message>
# and must fail to compile (-std=c++20 -fsyntax-only) with that substring in its first error,
# so the readable message is what the user sees first. A file whose first line is
#   // expect: success
# is a control and must compile (it proves the harness and include path are sound).
#   usage: run.sh COMPILER INCLUDE_DIR
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 COMPILER INCLUDE_DIR" >&2
  exit 2
fi
cxx=$1
inc=$(cd "$2" && pwd)  # absolute: the PCH directory links to it
dir=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
pch=$(mktemp -d)
trap 'rm -rf "$log" "$pch"' EXIT
# g++: sluice.hpp precompiled once and force-included (-include) into every case: a case then
# costs its own instantiations, not the parse of the whole library again (about 0.5 instead of
# 2 s of compiler time each). The header's name in the PCH directory is a link to the real one,
# so each case's own #include of it is the same file (#pragma once) and is skipped. Any other
# compiler, or a failed precompile, compiles each case whole.
pch_args=""
if "$cxx" --version 2>/dev/null | grep -q 'Free Software Foundation'; then
  mkdir -p "$pch/sluice" && ln -s "$inc/sluice/sluice.hpp" "$pch/sluice/sluice.hpp"
  if "$cxx" -std=c++20 -x c++-header -I "$inc" "$pch/sluice/sluice.hpp" -o "$pch/sluice/sluice.hpp.gch" >"$log" 2>&1; then
    pch_args="-I $pch -include sluice/sluice.hpp"
  fi
fi
passed=0
failed=0
for src in "$dir"/*.cpp; do
  name=$(basename "$src")
  expect=$(sed -n '1s|^// expect: ||p' "$src")
  if [ -z "$expect" ]; then
    echo "FAIL $name: first line must be '// expect: <message substring>'"
    failed=$((failed + 1))
    continue
  fi
  if "$cxx" -std=c++20 -fsyntax-only $pch_args -I "$inc" "$src" >"$log" 2>&1; then
    status=compiled
  else
    status=failed
  fi
  if [ "$expect" = success ]; then
    if [ $status = compiled ]; then
      echo "ok   $name (compiles)"
      passed=$((passed + 1))
    else
      echo "FAIL $name: must compile, but:"
      sed -n '1,25p' "$log"
      failed=$((failed + 1))
    fi
    continue
  fi
  first_error=$(grep -m 1 'error' "$log")
  errors=$(grep -c 'error:' "$log")
  if [ $status = compiled ]; then
    echo "FAIL $name: compiled, but must not"
    failed=$((failed + 1))
  elif ! printf '%s\n' "$first_error" | grep -F -q -e "$expect"; then
    echo "FAIL $name: the first error lacks \"$expect\":"
    sed -n '1,25p' "$log"
    failed=$((failed + 1))
  else
    echo "ok   $name ($errors error line(s))"
    passed=$((passed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
