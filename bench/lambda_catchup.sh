#!/usr/bin/env bash
# lambda_catchup.sh -- Lambda mode at the size of its history: `sales QUERY --lambda` fed a
# gen_sales file over loopback TCP; how fast it ingests, how long after the last row the batch
# horizon reaches the log head, its peak RSS, and whether the served answer then equals batch
# mode over the same file.
#
# Usage: bench/lambda_catchup.sh FILE [--query Q] [--connections N] [--segment-age D] [--retain D]
#   FILE             a gen_sales CSV (sent without its header)
#   --query Q        a sales query (default popular)
#   --connections N  TCP connections the sender spreads the rows over (default 4)
#   --segment-age D  sales --segment-age (default 1s)
#   --retain D       sales --retain (default: keep every window)
# Env: BUILD (default build). With --retain the comparison is against batch mode's rows of the
# windows served.
# Prints: rows, ingest seconds and rows/s (send_lines's first byte to every row in the log), catch-up
# seconds (last row in the log to horizon == head), peak RSS, the batch view's entries and
# table bytes per entry, and "answer: equal" or the diff size.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
FILE='' QUERY=popular CONNS=4 AGE=1s RETAIN=''
while (($#)); do
  case $1 in
    --query) QUERY=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --segment-age) AGE=$2; shift 2 ;;
    --retain) RETAIN=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) FILE=$1; shift ;;
  esac
done
[ -r "$FILE" ] || { echo "usage: lambda_catchup.sh FILE [--query Q] [--connections N] [--retain D]" >&2; exit 2; }
SALES=$BUILD/examples/sales SEND=$BUILD/examples/tools/send_lines
for p in "$SALES" "$SEND"; do [ -x "$p" ] || { echo "lambda_catchup.sh: missing $p (ninja -C $BUILD)" >&2; exit 2; }; done
ROWS=$(( $(wc -l < "$FILE") - 1 ))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lambda-catchup.XXXXXX")
trap 'pkill -P "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cat "$FILE" > /dev/null  # warm the page cache

EXTRA=()
[ -n "$RETAIN" ] && EXTRA=(--retain "$RETAIN")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
/usr/bin/time -f '%M' -o "$WORK/rss" "$SALES" "$QUERY" --lambda --log "$WORK/log" --listen 127.0.0.1:0 \
  --serve 127.0.0.1:0 --connections "$CONNS" --segment-age "$AGE" "${EXTRA[@]}" > /dev/null 2> "$WORK/err" &
PID=$!  # time's: sales is its child
PORT=$(wait_for_line "$WORK/err" 'listening on [^ ]*' | port_of)
HTTP=$(wait_for_line "$WORK/err" 'serving on http://[^ ]*' | sed 's|serving on ||')
status() { curl -sf "$HTTP/status"; }

T0=$(send "$PORT")
wait_until_ingested "$HTTP" "$ROWS" "$PID" "$WORK/err"
T1=$(now)
until status | grep -q '"caught_up":true'; do sleep 0.1; done
T2=$(now)
S=$(status)
curl -sf "$HTTP/$QUERY" > "$WORK/served.csv"
pkill -INT -P "$PID"  # sales, the child of time
wait "$PID" || true

"$SALES" "$QUERY" --input "$FILE" > "$WORK/batch.csv" 2> /dev/null
if [ -n "$RETAIN" ]; then  # only the windows served
  cut -d, -f1 "$WORK/served.csv" | sort -u > "$WORK/windows"
  awk -F, 'NR==FNR { keep[$1] = 1; next } FNR == 1 || ($1 in keep)' "$WORK/windows" "$WORK/batch.csv" > "$WORK/expected.csv"
else
  cp "$WORK/batch.csv" "$WORK/expected.csv"
fi
ENTRIES=$(echo "$S" | sed -n 's/.*"batch_view":{"entries":\([0-9]*\),"table_bytes":\([0-9]*\)}.*/\1/p')
BYTES=$(echo "$S" | sed -n 's/.*"batch_view":{"entries":\([0-9]*\),"table_bytes":\([0-9]*\)}.*/\2/p')
awk -v rows="$ROWS" -v t0="$T0" -v t1="$T1" -v t2="$T2" -v rss="$(cat "$WORK/rss")" -v e="$ENTRIES" -v b="$BYTES" \
  'BEGIN {
     printf "rows %d\ningest %.2f s, %.0f rows/s\ncatch-up after the last row %.2f s\npeak RSS %.0f MB\n", rows, t1 - t0, rows / (t1 - t0), t2 - t1, rss / 1024;
     printf "batch view %d entries, %.1f table bytes per entry\n", e, (e > 0 ? b / e : 0) }'
if cmp -s "$WORK/served.csv" "$WORK/expected.csv"; then
  echo "answer: equal to batch mode ($(($(wc -l < "$WORK/served.csv") - 1)) rows)"
else
  echo "answer: DIFFERS from batch mode: $(diff "$WORK/served.csv" "$WORK/expected.csv" | grep -c '^[<>]') lines"
  exit 1
fi
