#!/usr/bin/env bash
# Plots a compare.sh Markdown table (wall seconds per program and query) as a grouped bar chart.
#   bench/plot.sh TABLE.md OUT.png        (needs gnuplot: apt-get install gnuplot-nox)
set -euo pipefail
table=$1
out=$2
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not installed (apt-get install gnuplot-nox)" >&2; exit 2; }
data=$(mktemp)
trap 'rm -f "$data"' EXIT
# Rows: | program | query | wall | rss | ... ; pivot to: query sales duckdb polars awk
awk -F'|' '
  /^\| *(sales|duckdb|polars|awk) *\|/ {
    gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $4);
    wall[$3, $2] = $4; queries[$3] = 1
  }
  END {
    n = split("by-category region-minute top-products", order, " ")
    for (i = 1; i <= n; i++) {
      q = order[i]; if (!(q in queries)) continue
      printf "%s", q
      split("sales duckdb polars awk", progs, " ")
      for (j = 1; j <= 4; j++) { v = wall[q, progs[j]]; printf " %s", (v == "" ? "NaN" : v) }
      printf "\n"
    }
  }' "$table" > "$data"
gnuplot <<GP
set terminal pngcairo size 900,480 font ",11" noenhanced
set output "$out"
set title "Wall time on a 10M-row sales CSV, 2 cores (lower is better)"
set ylabel "seconds"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top left
set logscale y
set yrange [0.1:*]
set grid ytics
plot "$data" using 2:xtic(1) title "sluice sales", '' using 3 title "DuckDB", '' using 4 title "Polars", '' using 5 title "awk (mawk)"
GP
echo "plot.sh: wrote $out"
