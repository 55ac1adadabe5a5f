#!/usr/bin/env bash
# Renders the pictures of the example flows in docs/flows/ (committed; docs/guide.md shows them):
# the four sales queries, and Nexmark q3 (a regular join), q4 (a process function whose rows feed
# an aggregate), q5 (a window's rows into a second aggregate) and q13 (a lookup join).
# Graphviz is a documentation tool, not a build or CI dependency: installed here if missing.
# Usage: scripts/render_flows.sh [BUILD-DIR]    (default build/; builds sales and nexmark there)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
scripts/deps.sh graphviz
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Dbench=disabled >/dev/null
fi
ninja -C "$build" examples/sales examples/nexmark
mkdir -p docs/flows
for q in by-category region-minute top-products popular; do
  "$build/examples/sales" "$q" --explain --dot | dot -Tsvg -o "docs/flows/sales-$q.svg"
done
for q in q3 q4 q5 q13; do
  "$build/examples/nexmark" "$q" --explain --dot | dot -Tsvg -o "docs/flows/nexmark-$q.svg"
done
echo "render_flows: $(ls docs/flows | wc -l) pictures in docs/flows/"
