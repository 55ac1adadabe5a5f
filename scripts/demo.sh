#!/usr/bin/env bash
# The demo: installs what is missing, builds, generates 2M sales rows, runs the three queries.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build -j"$(nproc)" examples/sales examples/gen_sales examples/log_report examples/gen_access_log >/dev/null
data=${DEMO_DATA:-/tmp/sluice-demo-sales.csv}
rows=${DEMO_ROWS:-2000000}
echo "== generating $rows sales rows into $data"
build/examples/gen_sales "$rows" "$data"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for q in by-category region-minute top-products; do
  echo
  echo "== sales $q --input $data     (first 12 lines)"
  build/examples/sales "$q" --input "$data" > "$out"   # to a file: head closing a pipe early would kill it
  head -12 "$out"
done

logs=${DEMO_LOGS:-/tmp/sluice-demo-access.csv}
echo
echo "== the same API on another domain: a nightly report over 1M web-server log lines"
build/examples/gen_access_log 1000000 "$logs"
build/examples/log_report --input "$logs" > "$out"
head -9 "$out"
