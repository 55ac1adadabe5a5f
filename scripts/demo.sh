#!/usr/bin/env bash
# The demo: installs what is missing, builds, generates 2M sales rows, runs the three queries.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build -j"$(nproc)" examples/sales examples/gen_sales >/dev/null
data=${DEMO_DATA:-/tmp/sluice-demo-sales.csv}
rows=${DEMO_ROWS:-2000000}
echo "== generating $rows sales rows into $data"
build/examples/gen_sales "$rows" "$data"
for q in by-category region-minute top-products; do
  echo
  echo "== sales $q --input $data   (first 12 lines)"
  build/examples/sales "$q" --input "$data" | head -12
done
