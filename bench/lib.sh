# Shared by the bench scripts that time a sales server fed by send_lines; source it after setting
# SEND (send_lines), FILE (the rows), CONNS (connections) and WORK (a scratch directory).

now() { date +%s.%N; }

# wait_for_line ERRFILE PATTERN: the first match (grep -o) of PATTERN in a server's stderr.
wait_for_line() {
  for _ in $(seq 500); do
    if grep -qo "$2" "$1" 2>/dev/null; then grep -o "$2" "$1" | head -1; return; fi
    sleep 0.02
  done
  echo "${0##*/}: the server did not print '$2':" >&2; cat "$1" >&2; exit 1
}
port_of() { sed 's/.*://'; }

# send PORT: send_lines FILE to 127.0.0.1:PORT over CONNS connections; print the instant its first
# byte went out. send_lines reads and splits the file (over a second for 10M rows) before it
# opens the connections and starts its clock: that time is no server's, so it is taken off (its
# exit minus the seconds it reports).
send() {
  "$SEND" "$FILE" --to "127.0.0.1:$1" --connections "$CONNS" 2> "$WORK/send.err"
  local t secs
  t=$(now)
  secs=$(grep -o 'in [0-9.]* s' "$WORK/send.err" | awk '{print $2}')
  [ -n "$secs" ] || { echo "${0##*/}: send_lines failed:" >&2; cat "$WORK/send.err" >&2; exit 1; }
  echo "$t $secs" | awk '{printf "%.6f\n", $1 - $2}'
}

# status_field HTTP NAME: the number NAME in the server's GET /status (HTTP: http://host:port).
status_field() { curl -s "$1/status" | grep -o "\"$2\":[0-9]*" | sed 's/.*://'; }

# wait_until_ingested HTTP ROWS PID ERRFILE: poll GET /status until "ingested" reaches ROWS (a
# record counts once it is in the log, committed, and in the speed layer); fail if PID exits.
wait_until_ingested() {
  while [ "$(status_field "$1" ingested)" != "$2" ]; do
    kill -0 "$3" 2>/dev/null || { echo "${0##*/}: sales --lambda exited:" >&2; cat "$4" >&2; exit 1; }
    sleep 0.01
  done
}
