#!/usr/bin/env bash
# lambda_ingest.sh -- `sales --lambda` ingest rows/s against stream mode (`sales --listen`, no log)
# for the same query, the same rows and the same sender, in one run (issue 10, item 4).
#
# Usage: bench/lambda_ingest.sh [FILE] [--rows N] [--connections N] [--runs R] [--query Q]
#                               [--fsync POLICY]
#   FILE            a gen_sales CSV; default: generated once (gen_sales N FILE --seed 42) under
#                   $TMPDIR/sluice-lambda-ingest/ and reused
#   --rows N        rows to generate when FILE is not given (default 10000000)
#   --connections N TCP connections send_lines spreads the rows over (default 4)
#   --runs R        runs per mode; the best (shortest) is reported (default 3)
#   --query Q       the sales query (default region-minute)
#   --fsync POLICY  the log's fsync policy in lambda mode (default: the program's, interval:100)
# Env: BUILD (default build): where examples/sales, examples/gen_sales and
#      examples/tools/send_lines are. LOGDIR: where the lambda log goes (default under TMPDIR;
#      emptied before each run).
# Both time from the sender's first byte (see send below). Stream: to the server's exit (it exits
# once all connections closed and every row is processed). Lambda: the server never exits by
# itself (it serves), so to when GET /status says "ingested" equals the row count (it counts a
# record once it is in the log, committed, and in the speed layer), polled every 10 ms.
# Prints both rows/s, lambda as a fraction of stream, and the server's CPU seconds (user + sys,
# all threads, the batch layer's included; for lambda up to the last row ingested), which a
# neighbour's load on the machine disturbs less than the seconds.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
FILE='' GEN_ROWS=10000000 CONNS=4 RUNS=3 QUERY=region-minute FSYNC=''
while (($#)); do
  case $1 in
    --rows) GEN_ROWS=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --query) QUERY=$2; shift 2 ;;
    --fsync) FSYNC=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) FILE=$1; shift ;;
  esac
done
SALES=$BUILD/examples/sales SEND=$BUILD/examples/tools/send_lines GEN=$BUILD/examples/gen_sales
for p in "$SALES" "$SEND" "$GEN"; do [ -x "$p" ] || { echo "lambda_ingest.sh: missing $p (ninja -C $BUILD)" >&2; exit 2; }; done
if [ -z "$FILE" ]; then
  FILE=${TMPDIR:-/tmp}/sluice-lambda-ingest/sales-$GEN_ROWS.csv
  if [ ! -s "$FILE" ]; then
    mkdir -p "$(dirname "$FILE")"
    "$GEN" "$GEN_ROWS" "$FILE" --seed 42 >&2
  fi
fi
[ -r "$FILE" ] || { echo "lambda_ingest.sh: cannot read $FILE" >&2; exit 2; }
ROWS=$(( $(wc -l < "$FILE") - 1 ))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lambda-ingest.XXXXXX")
LOGDIR=${LOGDIR:-$WORK/log}
SERVER=''
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cat "$FILE" > /dev/null  # warm the page cache

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

stream_once() {
  local err=$WORK/stream.err
  rm -f "$err"
  /usr/bin/time -f '%U %S' -o "$WORK/stream.cpu" "$SALES" "$QUERY" --listen 127.0.0.1:0 --connections "$CONNS" \
    > /dev/null 2> "$err" &
  SERVER=$!
  local port t0 t1
  port=$(wait_for_line "$err" 'listening on [^ ]*' | port_of)
  t0=$(send "$port")
  wait "$SERVER"
  t1=$(now)
  SERVER=''
  echo "$t0 $t1 $(cat "$WORK/stream.cpu")" | awk '{printf "%.3f %.2f\n", $2 - $1, $3 + $4}'
}

lambda_once() {
  local err=$WORK/lambda.err
  rm -rf "$err" "$LOGDIR"
  sync  # no run starts with the writeback of the one before it
  "$SALES" "$QUERY" --lambda --log "$LOGDIR" --listen 127.0.0.1:0 --serve 127.0.0.1:0 --connections "$CONNS" \
    ${FSYNC:+--fsync "$FSYNC"} ${LAMBDA_ARGS:-} > /dev/null 2> "$err" &
  SERVER=$!
  local port http t0 t1
  port=$(wait_for_line "$err" 'listening on [^ ]*' | port_of)
  http=$(wait_for_line "$err" 'serving on http://[^ ]*' | sed 's|serving on ||')
  t0=$(send "$port")
  wait_until_ingested "$http" "$ROWS" "$SERVER" "$err"
  t1=$(now)
  local cpu
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$SERVER/stat")
  kill -INT "$SERVER"
  wait "$SERVER" || true
  SERVER=''
  echo "$t0 $t1 $cpu" | awk '{printf "%.3f %s\n", $2 - $1, $3}'
}

# Alternate the modes run by run, so that a neighbour's load spreads over both. Keep each mode's
# fastest run ("seconds cpu").
sb='' lb=''
for _ in $(seq "$RUNS"); do
  s=$(stream_once); l=$(lambda_once)
  echo "run: stream $s, lambda $l (seconds, server CPU seconds)" >&2
  sb=$(printf '%s\n%s\n' "$s" "${sb:-$s}" | sort -n | head -1)
  lb=$(printf '%s\n%s\n' "$l" "${lb:-$l}" | sort -n | head -1)
done

echo "| mode | seconds | rows/s | server CPU s |"
echo "|---|---:|---:|---:|"
echo "$sb $ROWS" | awk '{printf "| sales %s --listen | %.3f | %.2fM | %.2f |\n", "'"$QUERY"'", $1, $3/$1/1e6, $2}'
echo "$lb $ROWS" | awk '{printf "| sales %s --lambda | %.3f | %.2fM | %.2f |\n", "'"$QUERY"'", $1, $3/$1/1e6, $2}'
echo
echo "$sb $lb" | awk '{printf "lambda / stream rows/s: %.2f\n", $1/$3}'
echo "$ROWS rows, $CONNS connections, fsync ${FSYNC:-interval:100 (default)}, best of $RUNS; $(nproc) cores"
