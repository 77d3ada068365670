#!/usr/bin/env bash
# supervise.sh CHILD_PIDFILE CMD...: run CMD, and start it again one second after
# it exits, for as long as the supervisor runs (what systemd's Restart=always
# does in production; see ejabberd-config/../docs/operations.md).
#
# SIGTERM or SIGINT to the supervisor (scripts/stack.sh down, a rolling
# restart) is passed on to CMD, which stops gracefully; the supervisor then
# exits instead of starting it again. CMD's pid is kept in CHILD_PIDFILE, so
# that a fault test can kill -9 the process itself and watch it come back.
set -u
child_pidfile=$1
shift
child=0
stopping=0
stop() {
  stopping=1
  ((child)) && kill -TERM "$child" 2>/dev/null
}
trap stop TERM INT
while :; do
  "$@" &
  child=$!
  echo "$child" >"$child_pidfile"
  # A trapped signal interrupts wait: wait again until the child is gone.
  while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    rc=$?
  done
  rm -f "$child_pidfile"
  ((stopping)) && exit 0
  printf -- '--- %s supervise.sh: %s exited with status %s; starting it again in 1 s\n' \
    "$(date -u +%FT%TZ)" "$1" "${rc:-?}"
  sleep 1
done
