#!/usr/bin/env bash
# nexmark.sh -- every Nexmark query sluice runs, over the in-process generator (--generate, no
# JSON: the suite's datagen source) and over a gen_nexmark JSON lines file (--input), on one
# thread and on every core, rows counted and not written (--output none, the suite's blackhole
# sink). Prints a markdown table: events/s per core beside the Nexmark suite's published Flink
# figures (GUIDE_V1.md: 100M events, throughput per core), and peak RSS.
#
# Usage: bench/nexmark.sh [--events N] [--file-events N] [--queries "q0 q1 ..."] [--out FILE]
#   --events N       events per --generate run (default 10000000)
#   --file-events N  events in the JSON lines file (default 2000000; 0: skip the --input runs)
#   --queries LIST   the queries (default: all of them)
#   --out FILE       also write the table to FILE
# Env: BUILD (default build), TMPDIR.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
EVENTS=10000000 FILE_EVENTS=2000000 OUT=''
QUERIES="q0 q1 q2 q3 q4 q5 q6 q7 q8 q9 q10 q11 q12 q14 q15 q16 q17 q18 q19 q20 q21 q22"
while (($#)); do
  case $1 in
    --events) EVENTS=$2; shift 2 ;;
    --file-events) FILE_EVENTS=$2; shift 2 ;;
    --queries) QUERIES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "nexmark.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
NEXMARK=$BUILD/examples/nexmark GEN=$BUILD/examples/gen_nexmark
for p in "$NEXMARK" "$GEN"; do [ -x "$p" ] || { echo "nexmark.sh: missing $p (ninja -C $BUILD)" >&2; exit 2; }; done
CORES=$(nproc)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nexmark-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The suite's Flink figures, events/s per core (GUIDE_V1.md, 100M events, 8 cores and more).
declare -A FLINK=([q0]=155020 [q1]=157940 [q2]=175210 [q3]=152120 [q4]=34330 [q5]=22140 [q7]=12330 [q8]=146140
  [q9]=14240 [q10]=57810 [q11]=39700 [q12]=75670 [q13]=130730 [q14]=161230 [q15]=72420 [q16]=18650
  [q17]=116800 [q18]=53700 [q19]=44040 [q20]=18980 [q21]=98490 [q22]=129960)

# run QUERY THREADS SOURCE-ARGS...: prints "events/s peak-RSS-MB" from one run.
run() {
  local q=$1 threads=$2
  shift 2
  /usr/bin/time -f '%M' -o "$WORK/rss" "$NEXMARK" "$q" "$@" --threads "$threads" --output none 2> "$WORK/err" ||
    { cat "$WORK/err" >&2; exit 1; }
  local eps
  eps=$(grep -o '[0-9]* events/s' "$WORK/err" | awk '{print $1}')
  echo "$eps $(( $(tail -1 "$WORK/rss") / 1024 ))"
}

if [ "$FILE_EVENTS" -gt 0 ]; then
  "$GEN" "$FILE_EVENTS" "$WORK/events.jsonl" 2> /dev/null
  cat "$WORK/events.jsonl" > /dev/null  # into the page cache
fi

{
  echo "| query | Flink per core | generate, 1 thread | ratio | generate, $CORES threads, per core | peak RSS MB | JSON file, 1 thread | JSON file, $CORES threads, per core |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for q in $QUERIES; do
    read -r g1 _ < <(run "$q" 1 --generate "$EVENTS")
    read -r gn rss < <(run "$q" "$CORES" --generate "$EVENTS")
    f1='-' fn='-'
    if [ "$FILE_EVENTS" -gt 0 ]; then
      read -r f1 _ < <(run "$q" 1 --input "$WORK/events.jsonl")
      read -r fn _ < <(run "$q" "$CORES" --input "$WORK/events.jsonl")
      fn=$((fn / CORES))
    fi
    flink=${FLINK[$q]:-0}  # 0: the suite publishes no Flink figure (q6: Flink cannot run it)
    awk -v q="$q" -v flink="$flink" -v g1="$g1" -v gn="$gn" -v cores="$CORES" -v rss="$rss" -v f1="$f1" -v fn="$fn" \
      'BEGIN { printf "| %s | %s | %.0fK | %s | %.0fK | %s | %s | %s |\n", q,
               (flink == 0 ? "-" : sprintf("%.0fK", flink / 1000)), g1 / 1000,
               (flink == 0 ? "-" : sprintf("%.1fx", g1 / flink)),
               gn / cores / 1000, rss, (f1 == "-" ? "-" : sprintf("%.0fK", f1 / 1000)),
               (fn == "-" ? "-" : sprintf("%.0fK", fn / 1000)) }'
  done
  echo
  echo "$EVENTS generated events per run ($FILE_EVENTS in the JSON file), rows counted, not written; $CORES cores; $(date -u +%Y-%m-%d)"
} | tee "${OUT:-/dev/null}"
