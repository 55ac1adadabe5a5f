#!/usr/bin/env bash
# ab_sales.sh -- two builds of `sales` on the same file, timed in turn (A, B, A, B, ...), best
# of N each: the before/after ratio of a change, measured in one run on a machine that drifts.
# Usage: bench/ab_sales.sh SALES_A SALES_B FILE [QUERY] [RUNS]   (QUERY default by-category, RUNS 7)
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
a=$1 b=$2 file=$3 query=${4:-by-category} runs=${5:-7}
best() {  # best CURRENT_BEST SECONDS
  awk -v x="$1" -v y="$2" 'BEGIN { print (x == "" || y < x) ? y : x }'
}
best_a='' best_b=''
for _ in $(seq "$runs"); do
  for which in a b; do
    bin=${!which}
    start=$(date +%s.%N)
    "$bin" "$query" --input "$file" >/dev/null 2>&1
    end=$(date +%s.%N)
    t=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.4f", e - s }')
    if [ "$which" = a ]; then best_a=$(best "$best_a" "$t"); else best_b=$(best "$best_b" "$t"); fi
  done
done
awk -v q="$query" -v a="$best_a" -v b="$best_b" 'BEGIN { printf "%s: A %.3f s, B %.3f s, B/A %.2f\n", q, a, b, b / a }'
