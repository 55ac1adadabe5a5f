#!/usr/bin/env bash
# compare.sh -- whole-program benchmark: sluice `sales` vs. peers on the same CSV file.
#
# Usage: bench/compare.sh FILE [QUERY...] [--runs N] [--out FILE]
#   QUERY: by-category | region-minute | top-products   (default: all three)
#   --runs N   runs per program and query (default 3, or $RUNS); the table reports
#              the BEST (minimum) wall time of the N runs and the MAX peak RSS of the N runs
#   --out F    also write the Markdown table to F
# Env:
#   SALES  path of the sluice sales binary (default build/examples/sales; relative paths
#          are tried against $PWD, then the repo root). Run as: $SALES QUERY --input FILE --threads $(nproc)
#   AWK    awk for sales.awk (default mawk if installed, else gawk)
#   KEEP=1 keep the per-program outputs (the directory is printed)
# Programs: newline floor (C: mmap + memchr count of '\n'), sales, duckdb, polars, awk.
# Missing programs are skipped with a note. Every output is diffed against sales's output
# (or, without sales, against the first peer that ran): MISMATCH if it differs.
# Setup of the peers: bench/baselines/install.sh
#
# Timing: the file is pre-warmed in the page cache (cat FILE >/dev/null) before each
# program. Each run is wrapped in `/usr/bin/time -f '%e %M'` (peak RSS = %M); the wall time
# reported is measured with nanosecond `date` stamps around that call, because %e only
# has 10 ms resolution (it is used only if date lacks %N).
set -uo pipefail

die() { echo "compare.sh: $*" >&2; exit 2; }
note() { echo "compare.sh: $*" >&2; }
SKIPPED=()
skip() { SKIPPED+=("$1"); note "$1: $2, skipped"; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BASE="$HERE/baselines"

FILE='' OUT='' RUNS=${RUNS:-3}
QUERIES=()
while (($#)); do
  case $1 in
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --out=*) OUT=${1#--out=}; shift ;;
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --runs=*) RUNS=${1#--runs=}; shift ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    by-category|region-minute|top-products) QUERIES+=("$1"); shift ;;
    -*) die "unknown option $1" ;;
    *) if [ -z "$FILE" ]; then FILE=$1; shift; else die "unknown query '$1'"; fi ;;
  esac
done
[ -n "$FILE" ] || die "usage: compare.sh FILE [QUERY...] [--runs N] [--out FILE]"
[ -r "$FILE" ] || die "cannot read $FILE"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
((${#QUERIES[@]})) || QUERIES=(by-category region-minute top-products)
FILE=$(cd "$(dirname "$FILE")" && pwd)/$(basename "$FILE")
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time, or run bench/baselines/install.sh)"
NPROC=$(nproc)
export LC_ALL=C

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compare.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then note "outputs kept in $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi

# ---- locate programs --------------------------------------------------------
FLOOR=
if command -v cc >/dev/null; then
  FLOOR="$WORK/newline_floor"
  cc -O2 -o "$FLOOR" "$BASE/newline_floor.c" || { skip floor "compile failed"; FLOOR=; }
else
  skip floor "no C compiler"
fi

SALES_BIN=${SALES:-build/examples/sales}
if [[ $SALES_BIN != /* ]]; then
  if [ -x "$PWD/$SALES_BIN" ]; then SALES_BIN="$PWD/$SALES_BIN"; else SALES_BIN="$ROOT/$SALES_BIN"; fi
fi
[ -x "$SALES_BIN" ] || { skip sales "$SALES_BIN not found/executable (set SALES=...)"; SALES_BIN=; }

HAVE_NODE=0
if command -v node >/dev/null; then HAVE_NODE=1; else skip duckdb "node not found"; skip polars "node not found"; fi
HAVE_DUCK=0 HAVE_POLARS=0
if ((HAVE_NODE)); then
  if [ -d "$BASE/node_modules/@duckdb/node-api" ]; then HAVE_DUCK=1
  else skip duckdb "$BASE/node_modules/@duckdb/node-api missing (run bench/baselines/install.sh)"; fi
  if [ -d "$BASE/node_modules/nodejs-polars" ]; then HAVE_POLARS=1
  else skip polars "$BASE/node_modules/nodejs-polars missing (run bench/baselines/install.sh)"; fi
fi

AWK_BIN=${AWK:-}
if [ -z "$AWK_BIN" ]; then
  if command -v mawk >/dev/null; then AWK_BIN=mawk; elif command -v gawk >/dev/null; then AWK_BIN=gawk; fi
fi
if [ -n "$AWK_BIN" ] && ! command -v "$AWK_BIN" >/dev/null; then skip awk "$AWK_BIN not found"; AWK_BIN=
elif [ -z "$AWK_BIN" ]; then skip awk "no mawk/gawk"; fi

# ---- versions ---------------------------------------------------------------
VERS=()
((HAVE_DUCK)) && VERS+=("$(cd "$BASE" && node duckdb.mjs --version 2>/dev/null)")
((HAVE_POLARS)) && VERS+=("$(cd "$BASE" && node polars.mjs --version 2>/dev/null)")
((HAVE_NODE)) && VERS+=("node $(node --version)")
[ -n "$AWK_BIN" ] && VERS+=("$AWK_BIN: $("$AWK_BIN" -W version 2>/dev/null | head -1 || "$AWK_BIN" --version | head -1)")

# ---- running ----------------------------------------------------------------
HAVE_NS=0; [[ $(date +%N) =~ ^[0-9]+$ ]] && HAVE_NS=1
BEST=0 RSS=0 RC=0
# measure OUTFILE CMD... : runs CMD $RUNS times; sets BEST (s), RSS (KB, max), RC
measure() {
  local out=$1; shift
  local i t0 t1 w line best='' rss=0
  RC=0
  cat "$FILE" >/dev/null
  for ((i = 0; i < RUNS; i++)); do
    t0=$(date +%s%N)
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$out" 2>"$WORK/err"
    RC=$?
    t1=$(date +%s%N)
    line=$(tail -n 1 "$WORK/time")
    if ((RC != 0)); then return; fi
    if ((HAVE_NS)); then w=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
    else w=${line% *}; fi
    best=$(awk -v a="$w" -v b="$best" 'BEGIN{print (b=="" || a+0<b+0) ? a : b}')
    ((${line#* } > rss)) && rss=${line#* }
  done
  BEST=$best RSS=$rss
}

# results: parallel arrays
R_PROG=() R_Q=() R_WALL=() R_RSS=() R_CHECK=() R_PEER=()
add() { R_PROG+=("$1"); R_Q+=("$2"); R_WALL+=("$3"); R_RSS+=("$4"); R_CHECK+=("$5"); R_PEER+=("$6"); }

FLOOR_WALL='' ROWS=''
if [ -n "$FLOOR" ]; then
  note "floor ..."
  measure "$WORK/floor.out" "$FLOOR" "$FILE"
  if ((RC == 0)); then
    FLOOR_WALL=$BEST; ROWS=$(($(cat "$WORK/floor.out") - 1))
    add floor - "$BEST" "$RSS" "(${ROWS} rows)" 0
  else
    note "floor failed (rc=$RC)"; add floor - - - "FAIL rc=$RC" 0
  fi
fi

for q in "${QUERIES[@]}"; do
  REF='' REFNAME='' PREF='' PREFNAME=''
  for prog in sales duckdb polars awk; do
    cmd=() peer=1
    case $prog in
      sales) [ -n "$SALES_BIN" ] || continue; peer=0
             cmd=("$SALES_BIN" "$q" --input "$FILE" --threads "$NPROC") ;;
      duckdb) ((HAVE_DUCK)) || continue; cmd=(node "$BASE/duckdb.mjs" "$q" "$FILE") ;;
      polars) ((HAVE_POLARS)) || continue; cmd=(node "$BASE/polars.mjs" "$q" "$FILE") ;;
      awk) [ -n "$AWK_BIN" ] || continue; cmd=("$AWK_BIN" -v "query=$q" -f "$BASE/sales.awk" "$FILE") ;;
    esac
    note "$prog $q ..."
    out="$WORK/$prog.$q.csv"
    measure "$out" "${cmd[@]}"
    if ((RC != 0)); then
      note "$prog $q failed (rc=$RC):"; tail -n 5 "$WORK/err" >&2
      add "$prog" "$q" - - "FAIL rc=$RC" 0
      continue
    fi
    if [ -z "$REF" ]; then
      REF=$out REFNAME=$prog; check="ref"
    elif cmp -s "$REF" "$out"; then
      check="ok"
    else
      check="MISMATCH vs $REFNAME"
      # peers agreeing among themselves point at sales as the odd one out
      [ -n "$PREF" ] && cmp -s "$PREF" "$out" && check="$check (= $PREFNAME)"
      note "$prog $q: MISMATCH vs $REFNAME (diff head):"; diff "$REF" "$out" | head -n 10 >&2
    fi
    ((peer)) && [ -z "$PREF" ] && PREF=$out PREFNAME=$prog
    add "$prog" "$q" "$BEST" "$RSS" "$check" "$peer"
  done
done

# ---- table ------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="-" || b=="" || b+0<=0) print "-"; else printf "%.2fx", a/b }'; }
{
  echo "File: \`$FILE\` ($(du -h "$FILE" | cut -f1), ${ROWS:-?} rows); $NPROC threads; wall = best of $RUNS runs, RSS = max of $RUNS runs"
  if ((${#VERS[@]})); then v=$(IFS=';'; echo "${VERS[*]}"); echo "Peers: ${v//;/; }"; fi
  ((${#SKIPPED[@]})) && echo "Skipped (missing): ${SKIPPED[*]}"
  echo
  echo "| program | query | wall s (best of $RUNS) | peak RSS MB | vs fastest peer | vs floor | check |"
  echo "|---|---|---:|---:|---:|---:|---|"
  n=${#R_PROG[@]}
  for ((i = 0; i < n; i++)); do
    fastest=
    for ((j = 0; j < n; j++)); do
      if [ "${R_Q[j]}" = "${R_Q[i]}" ] && [ "${R_PEER[j]}" = 1 ] && [ "${R_WALL[j]}" != - ]; then
        fastest=$(awk -v a="${R_WALL[j]}" -v b="$fastest" 'BEGIN{print (b=="" || a+0<b+0) ? a : b}')
      fi
    done
    rss=${R_RSS[i]}; [ "$rss" != - ] && rss=$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')
    if [ "${R_PROG[i]}" = floor ]; then vf=-; vfl=1.00x; else vf=$(ratio "${R_WALL[i]}" "$fastest"); vfl=$(ratio "${R_WALL[i]}" "$FLOOR_WALL"); fi
    echo "| ${R_PROG[i]} | ${R_Q[i]} | ${R_WALL[i]} | $rss | $vf | $vfl | ${R_CHECK[i]} |"
  done
} >"$WORK/table.md"
cat "$WORK/table.md"
[ -n "$OUT" ] && cp "$WORK/table.md" "$OUT"
grep -q -e MISMATCH -e FAIL "$WORK/table.md" && exit 1
exit 0
