#!/usr/bin/env bash
# kafka_scale.sh -- sales over Kafka against the same rows over loopback TCP, and 1, 2 and 3
# instances of one consumer group, on the same data in the same run (issue 13, item 8).
#
# Usage: bench/kafka_scale.sh FILE [--partitions P] [--threads T] [--instances "1 2 3"] [--query Q]
#   FILE            a gen_sales CSV (its rows go to the topic without the header)
#   --partitions P  partitions of the topic (default 24: the mock cluster keeps only the last
#                   ~5 MiB of each partition, see below, so the file must fit in P x 4 MiB)
#   --threads T     sales worker threads per instance (default 1: instances are what scales here)
#   --instances L   group sizes to run (default "1 2 3")
#   --query Q       the sales query (default by-category)
# Env: BUILD (default build): where examples/sales, examples/tools/send_lines,
#      examples/tools/kafka_test_cluster are (a build with -Dkafka=enabled).
#
# The brokers are librdkafka's mock cluster (kafka_test_cluster, 3 brokers, in memory): it speaks
# Kafka's protocol over loopback TCP but is not a Kafka broker, and it shares the machine's
# cores with the instances. What this measures is sluice's side: CPU a record in the instances.
# The mock keeps at most about 5 MiB of messages a partition and deletes older ones, as a real
# broker's retention would (librdkafka has no setting for it): a 1M-row file on 6 partitions
# loses more than half its rows before anyone reads them. The script refuses such a file.
#
#   produce     send_lines FILE --kafka: rows/s into the topic (messages of ~64 KiB)
#   tcp         sales Q --listen, the same rows from send_lines over 4 connections: seconds from
#               the first byte to the server's exit, rows/s, the server's CPU s and CPU ns a row
#   kafka xN    N sales Q --kafka instances in one group (--serve, in-memory checkpoints every
#               100 ms), started on the full topic: seconds from the moment every partition has an
#               owner (GET /group) until GET /Q on the first instance equals batch mode's answer
#               (it is merged from every partition's checkpoint, so every row is in), rows/s, the
#               CPU s the instances used in that time, in all (from /proc), and CPU ns a row.
#               Joining the group (~3 s) is not counted; rebalances while N > 1 instances join are.
# Prints a Markdown table. Every run's answer is checked against `sales Q --input FILE`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
FILE='' PARTITIONS=24 THREADS=1 INSTANCES="1 2 3" QUERY=by-category
while (($#)); do
  case $1 in
    --partitions) PARTITIONS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --instances) INSTANCES=$2; shift 2 ;;
    --query) QUERY=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) FILE=$1; shift ;;
  esac
done
[ -r "$FILE" ] || { echo "usage: kafka_scale.sh FILE [--partitions P] [--threads T] [--instances L]" >&2; exit 2; }
SALES=$BUILD/examples/sales SEND=$BUILD/examples/tools/send_lines CLUSTER=$BUILD/examples/tools/kafka_test_cluster
for p in "$SALES" "$SEND" "$CLUSTER"; do [ -x "$p" ] || { echo "kafka_scale.sh: missing $p (a build with -Dkafka=enabled)" >&2; exit 2; }; done
command -v curl > /dev/null || { echo "kafka_scale.sh: needs curl" >&2; exit 2; }
ROWS=$(( $(wc -l < "$FILE") - 1 ))
if [ "$(stat -c %s "$FILE")" -gt $(( PARTITIONS * 4 * 1024 * 1024 )) ]; then
  echo "kafka_scale.sh: $FILE is over $PARTITIONS x 4 MiB: the mock cluster would delete rows before they are read (use --partitions)" >&2
  exit 2
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kafka-scale.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cat "$FILE" > /dev/null  # warm the page cache

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
CONNS=4

sorted_answer() { tail -n +2 | sort; }
"$SALES" "$QUERY" --input "$FILE" 2> /dev/null | sorted_answer > "$WORK/expected"

# CPU seconds (user + system) a live process has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

"$CLUSTER" --brokers 3 --topic "sales:$PARTITIONS" > "$WORK/cluster.out" 2> "$WORK/cluster.err" &
pids+=($!)
for _ in $(seq 500); do [ -s "$WORK/cluster.out" ] && break; sleep 0.02; done
BROKERS=$(head -1 "$WORK/cluster.out")
[ -n "$BROKERS" ] || { echo "kafka_scale.sh: kafka_test_cluster did not start:" >&2; cat "$WORK/cluster.err" >&2; exit 1; }

t0=$(now)
"$SEND" "$FILE" --kafka "$BROKERS" --topic sales --message-bytes 65536 2> "$WORK/produce.err"
produce_s=$(echo "$t0 $(now)" | awk '{printf "%.3f", $2 - $1}')

# TCP: the server's exit ends the run; /usr/bin/time gives its CPU.
rm -f "$WORK/tcp.err"
/usr/bin/time -f 'cpu %U %S' -o "$WORK/tcp.time" "$SALES" "$QUERY" --listen 127.0.0.1:0 --connections "$CONNS" \
  --threads "$THREADS" --max-delay 1h > "$WORK/tcp.out" 2> "$WORK/tcp.err" &
tcp_pid=$!
port=$(wait_for_line "$WORK/tcp.err" 'listening on [^ ]*' | port_of)
t0=$(send "$port")
wait "$tcp_pid"
tcp_s=$(echo "$t0 $(now)" | awk '{printf "%.3f", $2 - $1}')
tcp_cpu=$(awk '/^cpu/ {print $2 + $3}' "$WORK/tcp.time")
sorted_answer < "$WORK/tcp.out" | cmp -s - "$WORK/expected" || { echo "kafka_scale.sh: tcp answer differs from batch mode" >&2; exit 1; }

# owned HTTP: how many partitions GET /group says have an owner.
owned() { curl -s "$1/group" | grep -o '"owner":"[^"]\+"' | wc -l; }

declare -A secs cpu
for n in $INSTANCES; do
  group="g$n-$$"
  ports=() ipids=()
  for i in $(seq "$n"); do
    err=$WORK/k$n-$i.err
    "$SALES" "$QUERY" --kafka "$BROKERS" --topic sales --group "$group" --threads "$THREADS" --max-delay 1h \
      --checkpoint-every 100ms --session-timeout 3s --members-topic "$group-members" --serve 127.0.0.1:0 \
      > /dev/null 2> "$err" &
    ipids+=($!)
    pids+=($!)
    ports+=("$(wait_for_line "$err" 'serving on http://[^ /]*' | port_of)")
  done
  http=http://127.0.0.1:${ports[0]}
  until [ "$(owned "$http")" -ge "$PARTITIONS" ]; do sleep 0.01; done
  t0=$(now)
  before=0
  for p in "${ipids[@]}"; do before=$(echo "$before $(cpu_of "$p")" | awk '{print $1 + $2}'); done
  until [ "$(curl -s -w '%{http_code}' "$http/$QUERY" | tee "$WORK/answer" | tail -1)" = 200 ] &&
        head -n -1 "$WORK/answer" | sorted_answer | cmp -s - "$WORK/expected"; do
    sleep 0.02
  done
  secs[$n]=$(echo "$t0 $(now)" | awk '{printf "%.3f", $2 - $1}')
  total=0
  for p in "${ipids[@]}"; do total=$(echo "$total $(cpu_of "$p")" | awk '{print $1 + $2}'); done
  cpu[$n]=$(echo "$total $before" | awk '{print $1 - $2}')
  for p in "${ipids[@]}"; do kill "$p"; wait "$p" || true; done
done

echo "$ROWS rows of $(basename "$FILE"), sales $QUERY, --threads $THREADS, $PARTITIONS partitions, $(nproc) cores"
echo
echo "| run | seconds | rows/s | sales CPU s | CPU ns a row |"
echo "|---|---:|---:|---:|---:|"
row() { echo "$1 $2 $3 $ROWS" | awk '{printf "| %s | %.3f | %.2fM | %.2f | %.0f |\n", $1, $2, $4/$2/1e6, $3, $3*1e9/$4}'; }
echo "$produce_s $ROWS" | awk '{printf "| produce (send_lines) | %.3f | %.2fM | - | - |\n", $1, $2/$1/1e6}'
row tcp "$tcp_s" "$tcp_cpu"
for n in $INSTANCES; do row "kafka_x$n" "${secs[$n]}" "${cpu[$n]}"; done
