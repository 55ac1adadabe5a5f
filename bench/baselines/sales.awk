#!/usr/bin/awk -f
# sales.awk -- single-threaded awk peer for the sluice sales benchmark.
# Usage: LC_ALL=C mawk -v query=QUERY -f sales.awk FILE      (or gawk)
#   QUERY: by-category | region-minute | top-products
# Input CSV: ts,order_id,user_id,region,category,product_id,qty,price
# Revenue is accumulated in integer cents: qty * int(price*100 + 0.5).
# awk numbers are doubles, so sums stay exact below 2^53 cents.
# Output ordering is done in awk (portable to mawk, which has no asort).

BEGIN {
  FS = ","
  if (query == "by-category") mode = 1
  else if (query == "region-minute") mode = 2
  else if (query == "top-products") mode = 3
  else { print "sales.awk: unknown query '" query "'" > "/dev/stderr"; bad = 1; exit 2 }
}

NR == 1 { next }   # header

mode == 1 { cnt[$5]++; rev[$5] += $7 * int($8 * 100 + 0.5); next }

# Key on the minute index (ts div 60000, < 2^31) so the key string stays
# an exact integer under every awk's number-to-string conversion.
mode == 2 {
  k = $4 SUBSEP (($1 - $1 % 60000) / 60000)
  cnt[k]++; rev[k] += $7 * int($8 * 100 + 0.5); next
}

mode == 3 { rev[$6] += $7 * int($8 * 100 + 0.5); next }

function money(c,   w) {            # cents (exact integer double) -> "d.dd"
  w = int(c / 100)
  return sprintf("%.0f.%02d", w, c - w * 100)
}

# a before b? (mode 1: byte order of category; mode 2: region, then minute)
function before(a, b,   pa, pb) {
  if (mode == 1) return a < b
  split(a, pa, SUBSEP); split(b, pb, SUBSEP)
  if (pa[1] != pb[1]) return pa[1] < pb[1]
  return pa[2] + 0 < pb[2] + 0
}

function qsort(A, lo, hi,   i, last, t) {
  if (lo >= hi) return
  i = lo + int((hi - lo + 1) * rand())
  t = A[lo]; A[lo] = A[i]; A[i] = t
  last = lo
  for (i = lo + 1; i <= hi; i++)
    if (before(A[i], A[lo])) { last++; t = A[last]; A[last] = A[i]; A[i] = t }
  t = A[lo]; A[lo] = A[last]; A[last] = t
  qsort(A, lo, last - 1); qsort(A, last + 1, hi)
}

END {
  if (bad) exit 2
  if (mode == 3) {
    # keep the 10 best (revenue desc, product_id asc) by insertion
    n = 0
    for (p in rev) {
      r = rev[p]; pid = p + 0
      if (n == 10 && (r < topr[10] || (r == topr[10] && pid > topp[10]))) continue
      i = (n < 10) ? ++n : 10
      while (i > 1 && (r > topr[i-1] || (r == topr[i-1] && pid < topp[i-1]))) {
        topr[i] = topr[i-1]; topp[i] = topp[i-1]; i--
      }
      topr[i] = r; topp[i] = pid
    }
    print "product_id,revenue"
    for (i = 1; i <= n; i++) print topp[i] "," money(topr[i])
    exit 0
  }
  n = 0
  for (k in cnt) keys[++n] = k
  srand(1)
  qsort(keys, 1, n)
  if (mode == 1) {
    print "category,cnt,revenue"
    for (i = 1; i <= n; i++) { k = keys[i]; print k "," cnt[k] "," money(rev[k]) }
  } else {
    print "region,window_start,cnt,revenue"
    for (i = 1; i <= n; i++) {
      k = keys[i]; split(k, parts, SUBSEP)
      printf "%s,%.0f,%d,%s\n", parts[1], parts[2] * 60000, cnt[k], money(rev[k])
    }
  }
}
