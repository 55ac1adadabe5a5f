#!/usr/bin/env bash
# stream_tcp.sh -- stream mode over loopback TCP against the ceiling of a program that only
# receives and counts lines, on the same data, in the same run.
#
# Usage: bench/stream_tcp.sh FILE [--connections N] [--runs R] [--repeat K] [--threads T]
#   FILE            a gen_sales CSV (sent without its header)
#   --connections N TCP connections the sender spreads the rows over (default 4)
#   --runs R        runs per program; the best (shortest) is reported (default 3)
#   --repeat K      send the file K times per run (default 1)
#   --threads T     sales worker threads (default: nproc - 1, at least 1)
# Env: BUILD (default build): where examples/sales, examples/tools/send_lines and
#      bench/server/line_count_server are.
# Each run: start the server, wait until it listens, then time from the start of send_lines
# to the server's exit (it exits once all connections closed and everything is processed).
# Prints a Markdown table: seconds, rows/s, MB/s, and sales as a fraction of the ceiling.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
FILE='' CONNS=4 RUNS=3 REPEAT=1 THREADS=$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))
while (($#)); do
  case $1 in
    --connections) CONNS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) FILE=$1; shift ;;
  esac
done
[ -r "$FILE" ] || { echo "usage: stream_tcp.sh FILE [--connections N] [--runs R]" >&2; exit 2; }
SALES=$BUILD/examples/sales SEND=$BUILD/examples/tools/send_lines CEIL=$BUILD/bench/server/line_count_server
for p in "$SALES" "$SEND" "$CEIL"; do [ -x "$p" ] || { echo "stream_tcp.sh: missing $p (ninja -C $BUILD)" >&2; exit 2; }; done
ROWS=$(( ($(wc -l < "$FILE") - 1) * REPEAT ))
BYTES=$(( ($(stat -c %s "$FILE") - $(head -1 "$FILE" | wc -c)) * REPEAT ))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stream-tcp.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cat "$FILE" > /dev/null  # warm the page cache

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

# run_once NAME CMD... : start the server CMD, send, print the seconds
run_once() {
  local err=$WORK/$1.err
  shift
  rm -f "$err"  # the server's redirect truncates it only once it runs: no stale port may be read
  "$@" > "$WORK/out" 2> "$err" &
  local pid=$!
  local port
  port=$(wait_for_line "$err" 'listening on [^ ]*' | port_of)
  local t0 t1
  t0=$(now)
  "$SEND" "$FILE" --to "127.0.0.1:$port" --connections "$CONNS" --repeat "$REPEAT" 2> "$WORK/send.err"
  wait "$pid"
  t1=$(now)
  echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}'
}

best() {  # best NAME CMD...
  local b=''
  for _ in $(seq "$RUNS"); do
    local s
    s=$(run_once "$@")
    b=$(echo "$s ${b:-$s}" | awk '{print ($1 < $2) ? $1 : $2}')
  done
  echo "$b"
}

ceiling=$(best ceiling "$CEIL" --listen 127.0.0.1:0 --connections "$CONNS")
declare -A secs
for q in region-minute by-category; do
  secs[$q]=$(best "$q" "$SALES" "$q" --listen 127.0.0.1:0 --connections "$CONNS" --max-delay 1s --threads "$THREADS")
done

echo "| program | seconds | rows/s | MB/s | of ceiling |"
echo "|---|---:|---:|---:|---:|"
row() { echo "$1 $2 $ROWS $BYTES $ceiling" | awk '{printf "| %s | %.3f | %.2fM | %.0f | %.0f%% |\n", $1, $2, $3/$2/1e6, $4/$2/1e6, 100*$5/$2}'; }
row line_count_server "$ceiling"
for q in region-minute by-category; do row "sales_$q" "${secs[$q]}"; done
echo
echo "$ROWS rows, $BYTES bytes, $CONNS connections, sales --threads $THREADS, best of $RUNS; $(nproc) cores"
