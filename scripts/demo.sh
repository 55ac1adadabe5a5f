#!/usr/bin/env bash
# The demo: installs what is missing, builds, generates 2M sales rows, runs the three queries in
# batch mode, then the same query in stream mode over 4 TCP connections (same answer), then the
# Lambda architecture in one process (shop_lambda: event log, batch and speed layers, HTTP; checked
# against batch mode and a Kappa replay), then the monitoring example (the embedding API: the host
# pushes into a queue), the log report, and keyed state and joins: card-fraud rules (a process
# function with timers) in batch mode and over TCP with the same alerts, and sales enriched from a
# product table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build -j"$(nproc)" examples/sales examples/gen_sales examples/log_report examples/gen_access_log \
  examples/tools/send_lines examples/monitor examples/shop_lambda examples/fraud examples/enrich >/dev/null
data=${DEMO_DATA:-/tmp/sluice-demo-sales.csv}
rows=${DEMO_ROWS:-2000000}
echo "== generating $rows sales rows into $data"
build/examples/gen_sales "$rows" "$data"
out=$(mktemp) err=$(mktemp) batch=$(mktemp)
trap 'rm -f "$out" "$err" "$batch"' EXIT

# stream_like_batch FILE CONNECTIONS WHAT [SEND_LINES_ARGS...] -- SERVER...: start SERVER
# --listen on a free port, send FILE's lines over CONNECTIONS connections, and check that its
# output ($out; stderr in $err) equals the batch answer already in $batch, row for row.
stream_like_batch() {
  local file=$1 connections=$2 what=$3
  shift 3
  local send_args=()
  while [ "$1" != "--" ]; do send_args+=("$1"); shift; done
  shift
  "$@" --listen 127.0.0.1:0 > "$out" 2> "$err" &
  local server=$!
  for _ in $(seq 500); do grep -q 'listening on' "$err" && break; sleep 0.01; done
  local port
  port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$err")
  build/examples/tools/send_lines "$file" --to "127.0.0.1:$port" --connections "$connections" "${send_args[@]}"
  wait "$server"
  if [ "$(sort "$out")" = "$(sort "$batch")" ]; then
    echo "stream answer == batch answer ($(($(wc -l < "$out") - 1)) $what)"
  else
    echo "stream answer differs from batch answer" >&2
    exit 1
  fi
}
for q in by-category region-minute top-products popular; do
  echo
  echo "== sales $q --input $data     (first 12 lines)"
  build/examples/sales "$q" --input "$data" > "$out"   # to a file: head closing a pipe early would kill it
  head -12 "$out"
done

echo
echo "== stream mode: the same flow over TCP; send_lines spreads the rows over 4 connections"
build/examples/sales region-minute --input "$data" > "$batch" 2>/dev/null
stream_like_batch "$data" 4 "region-minute rows, windows printed as they fired" --split chunks -- \
  build/examples/sales region-minute --connections 4 --max-delay 1s
cat "$err"

echo
echo "== Lambda in one process: the same rows over 4 TCP connections into an event log; the batch layer"
echo "   computes revenue by category and region over the sealed segments, the speed layer covers the rest"
echo "   and tracks the products popular in the last 5 minutes; HTTP serves both merged"
build/examples/shop_lambda --input "$data"

echo
echo "== stream mode embedded: 50 hosts push CPU samples into an in-process queue; alerts on 1-minute averages"
build/examples/monitor > "$out"
head -5 "$out"

logs=${DEMO_LOGS:-/tmp/sluice-demo-access.csv}
echo
echo "== the same API on another domain: a nightly report over 1M web-server log lines"
build/examples/gen_access_log 1000000 "$logs"
build/examples/log_report --input "$logs" > "$out"
head -9 "$out"

txns=${DEMO_TXNS:-/tmp/sluice-demo-txns.csv}
products=${DEMO_PRODUCTS:-/tmp/sluice-demo-products.csv}
echo
echo "== keyed state and timers: card-fraud rules over 1M transactions, in batch mode (first 6 alerts)"
build/examples/fraud generate 1000000 "$txns"
build/examples/fraud --input "$txns" > "$batch"
head -6 "$batch"
echo "   ... and over TCP (2 connections): the same alerts?"
stream_like_batch "$txns" 2 "alerts" -- build/examples/fraud --connections 2

echo
echo "== a stream-table join: the sales rows priced by brand from a product table, revenue per brand per hour"
build/examples/enrich products 100000 "$products"
build/examples/enrich --products "$products" --input "$data" > "$out"
head -8 "$out"
