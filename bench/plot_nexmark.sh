#!/usr/bin/env bash
# Plots bench/nexmark.sh's Markdown table: events/s per core of sluice on one thread (in-process
# generator) beside the Nexmark suite's published Flink figure, per query, on a log scale.
#   bench/plot_nexmark.sh TABLE.md OUT.png        (needs gnuplot: apt-get install gnuplot-nox)
set -euo pipefail
table=$1
out=$2
command -v gnuplot >/dev/null || { echo "plot_nexmark.sh: gnuplot not installed (apt-get install gnuplot-nox)" >&2; exit 2; }
data=$(mktemp)
trap 'rm -f "$data"' EXIT
# Rows: | qN | Flink per core (NNNK or -) | generate, 1 thread (NNNK) | ... -> "qN flink sluice" in K/s
awk -F'|' '
  /^\| *q[0-9]+ *\|/ {
    q = $2; flink = $3; one = $4
    gsub(/[ K]/, "", q); gsub(/[ K]/, "", flink); gsub(/[ K]/, "", one)
    printf "%s %s %s\n", q, (flink == "-" ? "NaN" : flink), one
  }' "$table" > "$data"
gnuplot <<GP
set terminal pngcairo size 1100,480 font ",11" noenhanced
set output "$out"
set title "Nexmark: events/s per core (higher is better; Flink: the suite's published figure)"
set ylabel "thousand events/s per core"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top right
set logscale y
set yrange [5:20000]
set grid ytics
plot "$data" using 3:xtic(1) title "sluice, 1 thread, in-process generator", '' using 2 title "Flink (GUIDE_V1.md)"
GP
echo "plot_nexmark.sh: wrote $out"
