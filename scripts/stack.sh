#!/usr/bin/env bash
# orgchat development and test stack, everything on 127.0.0.1:
# PostgreSQL, Redis, ejabberd (ejabberd-config/), a dev SMTP sink and the
# orgchat component. All runtime state lives under .run/.
#
#   scripts/stack.sh up       start whatever is missing; idempotent, fast when warm
#   scripts/stack.sh down     stop what this checkout started
#   scripts/stack.sh status   one line per service
#   scripts/stack.sh venv     only create or update .venv (used by `make lint`)
#
# A PostgreSQL or Redis already listening on its standard port is reused and
# never stopped; the ones this script starts are recorded in .run/ and only
# those are stopped by `down`. ejabberd runs as node orgchat@localhost with its
# configuration, spool and logs in this checkout, as the invoking user.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

readonly RUN=$ROOT/.run
readonly LOGS=$RUN/log
readonly VENV=$ROOT/.venv
readonly CONFIG=config/dev.toml

readonly DEBS=(ejabberd erlang-p1-pgsql erlang-p1-oauth2 postgresql redis-server python3-venv curl iproute2 procps
  chromium fonts-liberation profanity tmux)

readonly PG_PORT=5432 PG_USER=orgchat PG_PASSWORD=orgchat-dev PG_DB=orgchat
readonly REDIS_PORT=6379
readonly EJ=$RUN/ejabberd NODE=orgchat@localhost
readonly EJ_PORTS=(5222 5347 5348 5349 5280)
# ejabberd's own SQL database: mod_mam of the benchmark's anchor vhost
readonly EJ_DB=ejabberd_bench EJ_SCHEMA=/usr/share/ejabberd/sql/pg.new.sql
readonly EJ_FRAGMENTS=("$ROOT/ejabberd-config/dev.yml" "$ROOT/ejabberd-config/ejabberd.yml")
readonly API=http://127.0.0.1:5280/api
readonly SMTP_PORT=2525 MAILDIR=$RUN/mail
readonly READY_TIMEOUT=30

# ---------------------------------------------------------------- helpers

say() { printf '[stack] %-11s %s\n' "$1" "$2"; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# now_ms: wall clock in milliseconds, without forking `date`.
now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((10#$t / 1000)); }

show_tail() {  # show_tail FILE [LINES]: the end of a log, on stderr
  [[ -s $1 ]] || return 0
  printf -- '----- last %s lines of %s -----\n' "${2:-30}" "${1#"$ROOT"/}" >&2
  tail -n "${2:-30}" "$1" >&2
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmdline() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline"; }

alive() {  # alive PID: the process exists and is not a zombie
  local st
  [[ -n ${1:-} ]] || return 1
  # read, not $(<file): in bash 5.2 a failed $(<file) ends the script under set -e
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

read_pid() {  # read_pid FILE: print the pid stored in FILE, if any
  local pid
  [[ -s $1 ]] && read -r pid <"$1" && [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
}

pid_running() {  # pid_running PIDFILE PATTERN: print the pid if alive and its command matches
  local pid
  pid=$(read_pid "$1") && alive "$pid" && [[ $(cmdline "$pid") == *"$2"* ]] && echo "$pid"
}

port_holder() {  # port_holder PORT: "pid N (command)" of whatever listens on PORT
  local line pid
  line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1) || true
  pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$line")
  if [[ -n $pid ]]; then
    printf 'pid %s (%s)' "$pid" "$(cmdline "$pid" | cut -c 1-120 | sed 's/ *$//')"
  else
    printf 'another process'
  fi
}

# wait_for TIMEOUT READY_FN [ALIVE_FN]: poll READY_FN every 50 ms. Returns 1
# after TIMEOUT seconds, 2 as soon as ALIVE_FN fails (checked after a 2 s grace
# period, while a daemon may still be forking).
wait_for() {
  local start deadline now
  start=$(now_ms)
  deadline=$((start + $1 * 1000))
  until "$2"; do
    now=$(now_ms)
    if [[ -n ${3:-} ]] && ((now - start > 2000)) && ! "$3"; then return 2; fi
    ((now < deadline)) || return 1
    sleep 0.05
  done
}

stop_pid() {  # stop_pid PID TIMEOUT: SIGTERM, wait, then SIGKILL
  local pid=$1 waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while alive "$pid"; do
    if ((waited >= $2 * 20)); then
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.1
      break
    fi
    sleep 0.05
    waited=$((waited + 1))
  done
}

# launch LOG PIDFILE CMD...: run CMD detached (own session, no stdin, fd 9 -
# the stack lock - closed), output appended to LOG; record its pid.
launch() {
  local log=$1 pidfile=$2
  shift 2
  printf -- '--- %s scripts/stack.sh: %s\n' "$(date -u +%FT%TZ)" "${*#"$ROOT"/}" >>"$log"
  setsid "$@" </dev/null >>"$log" 2>&1 9>&- &
  echo $! >"$pidfile"
}

hash_of() { sha256sum "$@" 2>/dev/null | sha256sum | cut -c 1-64; }

lock() {
  mkdir -p "$LOGS"
  exec 9>"$RUN/.stack.lock"
  flock -w 300 9 || die "another scripts/stack.sh has held $RUN/.stack.lock for 5 minutes"
}

# ---------------------------------------------------------------- packages

ensure_packages() {
  local missing=() pkg name status
  local -A installed=()
  command -v dpkg-query >/dev/null || die "not a Debian system: install ${DEBS[*]} by hand"
  while read -r name status; do
    installed[$name]=$status
  done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${DEBS[@]}" 2>/dev/null || true)
  for pkg in "${DEBS[@]}"; do
    [[ ${installed[$pkg]:-} == installed ]] || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    say packages "all present (${DEBS[*]})"
    return
  fi
  ((EUID == 0)) || die "missing Debian packages: ${missing[*]}; run as root or install them"
  say packages "installing ${missing[*]} (log: .run/log/apt.log)"
  local apt=(apt-get install -y -q -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold "${missing[@]}")
  export DEBIAN_FRONTEND=noninteractive
  if ! "${apt[@]}" >>"$LOGS/apt.log" 2>&1 9>&-; then
    say packages "install failed; running apt-get update and retrying"
    if ! { apt-get update -q && "${apt[@]}"; } >>"$LOGS/apt.log" 2>&1 9>&-; then
      show_tail "$LOGS/apt.log"
      die "apt-get install ${missing[*]} failed"
    fi
  fi
}

# ---------------------------------------------------------------- python

venv_hash() {
  hash_of setup.cfg pyproject.toml requirements/lock.txt requirements/aioxmpp.txt \
    requirements/aioxmpp-nodeps.txt
}

ensure_venv() {
  local want
  if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
      die "python3 is $(python3 --version 2>&1); orgchat needs Python 3.11 or newer"
    say venv "creating .venv with $(python3 --version 2>&1)"
    python3 -m venv --clear "$VENV" >>"$LOGS/pip.log" 2>&1 || {
      show_tail "$LOGS/pip.log"
      die "python3 -m venv failed"
    }
  fi
  want=$(venv_hash)
  if [[ $(cat "$VENV/.stack-installed" 2>/dev/null) == "$want" ]]; then
    say venv ".venv up to date"
    return
  fi
  say venv "pip install -e '.[dev]' + aioxmpp, versions of requirements/lock.txt (log: .run/log/pip.log)"
  # Playwright (tests) drives Debian's chromium; it must never fetch a browser of its own.
  # The lock is a constraints file: every package at its locked version, none more.
  local pip=(env PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c requirements/lock.txt)
  if ! { "${pip[@]}" -e '.[dev]' &&
    "${pip[@]}" -r requirements/aioxmpp.txt &&
    "${pip[@]}" --no-deps -r requirements/aioxmpp-nodeps.txt; } >>"$LOGS/pip.log" 2>&1; then
    show_tail "$LOGS/pip.log"
    die "pip install failed"
  fi
  echo "$want" >"$VENV/.stack-installed"
}

# ---------------------------------------------------------------- converse.js

# The browser tests' client (tests/integration/test_converse.py), from its npm
# lock file; installed again only when package.json or the lock changes.
readonly CONVERSE=tests/integration/converse

converse_hash() { hash_of "$CONVERSE/package.json" "$CONVERSE/package-lock.json"; }

ensure_converse() {
  local want
  want=$(converse_hash)
  if [[ $(cat "$CONVERSE/node_modules/.stack-installed" 2>/dev/null) == "$want" ]]; then
    say converse "$CONVERSE/node_modules up to date"
    return
  fi
  command -v npm >/dev/null || die "npm is missing: the browser tests need Node.js 20 with npm"
  say converse "npm ci in $CONVERSE (log: .run/log/npm.log)"
  # No install scripts: only the prebuilt dist/ is served.
  if ! (cd "$CONVERSE" && npm ci --ignore-scripts --no-audit --no-fund) >>"$LOGS/npm.log" 2>&1 9>&-; then
    show_tail "$LOGS/npm.log"
    die "npm ci failed in $CONVERSE"
  fi
  echo "$want" >"$CONVERSE/node_modules/.stack-installed"
}

# ---------------------------------------------------------------- web page

# The directory page (web/, served by ejabberd at /web/) loads Strophe.js
# from web/node_modules, installed from its npm lock file; again only when
# package.json or the lock changes.
readonly WEB=web

web_hash() { hash_of "$WEB/package.json" "$WEB/package-lock.json"; }

ensure_web() {
  local want
  want=$(web_hash)
  if [[ $(cat "$WEB/node_modules/.stack-installed" 2>/dev/null) == "$want" ]]; then
    say web "$WEB/node_modules up to date"
    return
  fi
  command -v npm >/dev/null || die "npm is missing: the web page needs Node.js 20 with npm"
  say web "npm ci in $WEB (log: .run/log/npm.log)"
  # No install scripts: only the prebuilt dist/ is served.
  if ! (cd "$WEB" && npm ci --ignore-scripts --no-audit --no-fund) >>"$LOGS/npm.log" 2>&1 9>&-; then
    show_tail "$LOGS/npm.log"
    die "npm ci failed in $WEB"
  fi
  echo "$want" >"$WEB/node_modules/.stack-installed"
}

# ---------------------------------------------------------------- postgresql

pg_superuser() {  # psql as the postgres superuser over the socket (works with peer auth)
  (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres)
}

pg_login_ok() {  # the orgchat role logs in over TCP with its password and may create databases
  [[ $(PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=5 psql -X -q -w -h 127.0.0.1 -p "$PG_PORT" \
    -U "$PG_USER" -d "$PG_DB" -tAc 'SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user' \
    2>/dev/null) == t ]]
}

pg_port_open() { port_open "$PG_PORT"; }

ensure_postgres() {
  local how version cluster
  if pg_port_open; then
    if [[ -s $RUN/postgresql.ours ]]; then how="running (started by this stack)"; else how="reusing the server on 127.0.0.1:$PG_PORT"; fi
  else
    read -r version cluster < <(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print $1, $2; exit}') || true
    if [[ -z ${version:-} ]]; then
      version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
      [[ -n $version ]] || die "PostgreSQL is not installed (/usr/lib/postgresql is empty)"
      # "main" unless it exists on another port (then it is someone else's)
      cluster=main
      [[ -d /etc/postgresql/$version/main ]] && cluster=orgchat
      say postgresql "creating cluster $version/$cluster on port $PG_PORT"
      pg_createcluster --port "$PG_PORT" "$version" "$cluster" >>"$LOGS/postgresql.log" 2>&1 9>&- || {
        show_tail "$LOGS/postgresql.log"
        die "pg_createcluster $version $cluster failed"
      }
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >>"$LOGS/postgresql.log" 2>&1 9>&- || {
      show_tail "$LOGS/postgresql.log"
      die "pg_ctlcluster $version $cluster start failed (see /var/log/postgresql/)"
    }
    echo "$version $cluster" >"$RUN/postgresql.ours"
    wait_for "$READY_TIMEOUT" pg_port_open || die "PostgreSQL $version/$cluster started but 127.0.0.1:$PG_PORT never opened"
    how="started cluster $version/$cluster"
  fi
  if ! pg_login_ok; then
    # Create what is missing and (re)set the password: on a fresh Debian,
    # pg_hba asks TCP clients on 127.0.0.1 for a scram password.
    pg_superuser >>"$LOGS/postgresql.log" 2>&1 <<SQL || die "could not create role/database $PG_USER as postgres (see .run/log/postgresql.log)"
SELECT 'CREATE ROLE $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') \gexec
ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
    pg_login_ok || die "role $PG_USER cannot log in to 127.0.0.1:$PG_PORT/$PG_DB with its password: check pg_hba.conf"
    how+=", created role/database $PG_USER"
  fi
  say postgresql "$how; database $PG_DB ready"
}

pg_orgchat() {  # psql as the orgchat role over TCP: pg_orgchat DB ARGS...
  local db=$1; shift
  PGPASSWORD=$PG_PASSWORD psql -X -q -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$db" "$@"
}

ensure_ejabberd_db() {  # the database of ejabberd's mod_mam on the bench vhost (ejabberd-config/dev.yml)
  if [[ $(pg_orgchat "$EJ_DB" -tAc "SELECT to_regclass('public.archive') IS NOT NULL" 2>/dev/null) == t ]]; then
    return 0
  fi
  pg_orgchat postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$EJ_DB'" | grep -q 1 ||
    pg_orgchat postgres -c "CREATE DATABASE $EJ_DB" >>"$LOGS/postgresql.log" 2>&1 ||
    die "could not create database $EJ_DB"
  pg_orgchat "$EJ_DB" -f "$EJ_SCHEMA" >>"$LOGS/postgresql.log" 2>&1 ||
    die "could not load $EJ_SCHEMA into $EJ_DB (see .run/log/postgresql.log)"
  say postgresql "created $EJ_DB from ejabberd's schema (mod_mam of bench-mam.localhost)"
}

# ---------------------------------------------------------------- redis

redis_port_open() { port_open "$REDIS_PORT"; }
redis_ours() { pid_running "$RUN/redis.pid" redis-server; }

ensure_redis() {
  if redis_port_open; then
    if redis_ours >/dev/null; then
      say redis "running on 127.0.0.1:$REDIS_PORT (started by this stack)"
    else
      rm -f "$RUN/redis.pid"
      say redis "reusing the server on 127.0.0.1:$REDIS_PORT"
    fi
    return
  fi
  mkdir -p "$RUN/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$RUN/redis" \
    --save '' --appendonly no --logfile "$LOGS/redis.log" --pidfile "$RUN/redis.pid" 9>&- ||
    die "redis-server failed to start (see .run/log/redis.log)"
  wait_for "$READY_TIMEOUT" redis_port_open || {
    show_tail "$LOGS/redis.log"
    die "redis-server started but 127.0.0.1:$REDIS_PORT never opened"
  }
  say redis "started on 127.0.0.1:$REDIS_PORT"
}

# ---------------------------------------------------------------- ejabberd

ejctl() { ejabberdctl --config-dir "$EJ" --spool "$EJ/spool" --logs "$LOGS" "$@"; }

ejabberd_is_ours() {  # our node: our node name and the spool in this checkout
  local c
  c=$(cmdline "$1") && [[ $c == *"-sname $NODE "* && $c == *"$EJ/spool"* ]] && alive "$1"
}

ejabberd_pid() {  # pid of our node's VM
  local pid
  pid=$(read_pid "$EJ/ejabberd.pid") && ejabberd_is_ours "$pid" && { echo "$pid"; return; }
  for pid in $(pgrep -f -- "-sname $NODE " || true); do
    ejabberd_is_ours "$pid" && { echo "$pid"; return; }
  done
  return 1
}

ejabberd_alive() { ejabberd_pid >/dev/null; }
ejabberd_ready() { local p; for p in "${EJ_PORTS[@]}"; do port_open "$p" || return 1; done; }

write_ejabberd_config() {
  local yml cfg
  mkdir -p "$EJ/spool" "$EJ/upload"
  yml="# Generated by scripts/stack.sh; edit ejabberd-config/ instead.
# The values that depend on where this checkout is.
define_macro:
  WEB_ROOT: \"$ROOT/web\"
  UPLOAD_ROOT: \"$EJ/upload\"
include_config_file:
$(printf '  - %s\n' "${EJ_FRAGMENTS[@]}")"
  # ejabberdctl sources this file as shell. EXEC_CMD=as_current_user keeps
  # ejabberd as the invoking user (root would otherwise switch to the
  # ejabberd user, who cannot enter a checkout in a 0700 directory).
  cfg="# Generated by scripts/stack.sh.
ERLANG_NODE=$NODE
EJABBERD_CONFIG_PATH=$EJ/ejabberd.yml
EJABBERD_PID_PATH=$EJ/ejabberd.pid
INET_DIST_INTERFACE=127.0.0.1
ERL_EPMD_ADDRESS=127.0.0.1
EXEC_CMD=as_current_user"
  [[ $(cat "$EJ/ejabberd.yml" 2>/dev/null) == "$yml" ]] || printf '%s\n' "$yml" >"$EJ/ejabberd.yml"
  [[ $(cat "$EJ/ejabberdctl.cfg" 2>/dev/null) == "$cfg" ]] || printf '%s\n' "$cfg" >"$EJ/ejabberdctl.cfg"
  local f
  for f in inetrc ejabberd.pem; do
    cmp -s "/etc/ejabberd/$f" "$EJ/$f" || cp "/etc/ejabberd/$f" "$EJ/$f"
  done
}

stop_ejabberd() {
  local pid
  pid=$(ejabberd_pid) || return 1
  # The VM handles SIGTERM as init:stop(): ejabberd stops cleanly (~2 s)
  # without booting a second VM for `ejabberdctl stop`.
  stop_pid "$pid" 30
}

ensure_ejabberd() {
  local pid want have p holder
  write_ejabberd_config
  want=$(hash_of "$EJ/ejabberd.yml" "$EJ/ejabberdctl.cfg" "${EJ_FRAGMENTS[@]}")
  have=$(cat "$EJ/started.sha256" 2>/dev/null || true)
  EJABBERD_STARTED=0
  if pid=$(ejabberd_pid); then
    if [[ $want == "$have" ]]; then
      wait_for "$READY_TIMEOUT" ejabberd_ready ejabberd_alive || {
        show_tail "$LOGS/ejabberd.log"
        die "ejabberd node $NODE (pid $pid) is running but its ports ${EJ_PORTS[*]} do not all accept connections"
      }
      say ejabberd "running (node $NODE, pid $pid)"
      return
    fi
    say ejabberd "configuration changed: restarting node $NODE (pid $pid)"
    stop_ejabberd
  fi
  for p in "${EJ_PORTS[@]}"; do
    if port_open "$p"; then
      holder=$(port_holder "$p")
      die "port $p is held by $holder, which is not our ejabberd node $NODE ($EJ)"
    fi
  done
  rm -f "$EJ/ejabberd.pid"
  ejctl start >>"$LOGS/ejabberdctl.log" 2>&1 9>&- || {
    show_tail "$LOGS/ejabberdctl.log"
    die "ejabberdctl start failed"
  }
  echo "$want" >"$EJ/started.sha256"
  EJABBERD_STARTED=1
  if ! wait_for "$READY_TIMEOUT" ejabberd_ready ejabberd_alive; then
    show_tail "$LOGS/ejabberdctl.log" 10
    show_tail "$LOGS/error.log" 20
    show_tail "$LOGS/ejabberd.log" 40
    die "ejabberd did not open ports ${EJ_PORTS[*]} within ${READY_TIMEOUT}s"
  fi
  say ejabberd "started (node $NODE, pid $(ejabberd_pid || echo '?'))"
}

# ---------------------------------------------------------------- smtp sink

smtp_pid() { pid_running "$RUN/smtp.pid" scripts/smtp_sink.py; }
smtp_alive() { smtp_pid >/dev/null; }
smtp_ready() { port_open "$SMTP_PORT"; }

ensure_smtp() {
  local pid want
  want=$(hash_of scripts/smtp_sink.py)
  if pid=$(smtp_pid); then
    if [[ $(cat "$RUN/smtp.sha256" 2>/dev/null) == "$want" ]]; then
      say smtp "running on 127.0.0.1:$SMTP_PORT -> .run/mail/ (pid $pid)"
      return
    fi
    stop_pid "$pid" 10
  fi
  port_open "$SMTP_PORT" && die "port $SMTP_PORT is held by $(port_holder "$SMTP_PORT"), not our SMTP sink"
  launch "$LOGS/smtp.log" "$RUN/smtp.pid" "$VENV/bin/python" "$ROOT/scripts/smtp_sink.py" \
    --host 127.0.0.1 --port "$SMTP_PORT" --maildir "$MAILDIR"
  echo "$want" >"$RUN/smtp.sha256"
  wait_for "$READY_TIMEOUT" smtp_ready smtp_alive || {
    show_tail "$LOGS/smtp.log" 10
    die "the SMTP sink did not accept connections on 127.0.0.1:$SMTP_PORT"
  }
  say smtp "started on 127.0.0.1:$SMTP_PORT -> .run/mail/ (pid $(read_pid "$RUN/smtp.pid"))"
}

# ---------------------------------------------------------------- orgchat

orgchat_cli() {  # orgchat_cli STEP ARGS...: one orgchat command, output kept in .run/log/cli.log
  local step=$1 out
  shift
  printf -- '--- %s orgchat --config %s %s\n' "$(date -u +%FT%TZ)" "$CONFIG" "$*" >>"$LOGS/cli.log"
  if out=$("$VENV/bin/orgchat" --config "$CONFIG" "$@" 2>&1); then
    printf '%s\n' "$out" >>"$LOGS/cli.log"
    say "$step" "done: orgchat $*"
  else
    printf '%s\n' "$out" | tee -a "$LOGS/cli.log" >&2
    die "$step failed: .venv/bin/orgchat --config $CONFIG $*"
  fi
}

# The development stack runs COMPONENTS processes of the component, each under
# scripts/supervise.sh (started again a second after it dies, as systemd does
# in production), so that a crash or a kill -9 of one leaves the other serving
# and a restart is rolling: one process at a time, the next once it is ready.
COMPONENTS=${ORGCHAT_DEV_COMPONENTS:-2}

component_ready_file() {  # component_ready_file N: instance N's component.ready_file
  echo "$RUN/component-$1.ready"
}

component_metrics_port() {  # component_metrics_port N: instance N's metrics.port
  case $1 in
    node2) echo "$NODE2_METRICS_PORT" ;;
    *) echo $((9140 + $1)) ;;
  esac
}

component_hash() {
  {
    find component extensions storage -type f \( -name '*.py' -o -name '*.sql' \) -print0 |
      sort -z | xargs -0 -r sha256sum
    sha256sum "$CONFIG"
    cat "$VENV/.stack-installed"
  } | sha256sum | cut -c 1-64
}

# Instance N: its supervisor's pid in component-N.pid, the process's own in
# component-N.child, its log in .run/log/component-N.log.
component_pid() { pid_running "$RUN/component-$1.pid" "scripts/supervise.sh"; }
INSTANCE=1
component_alive() { component_pid "$INSTANCE" >/dev/null; }
component_ready() { [[ -e $(component_ready_file "$INSTANCE") ]]; }

# start_component N [VAR=VALUE...]: launch instance N under its supervisor, with
# these settings added to its environment, and wait until it is ready.
start_component() {
  local n=$1 rc=0
  shift
  INSTANCE=$n
  rm -f "$(component_ready_file "$n")"
  launch "$LOGS/component-$n.log" "$RUN/component-$n.pid" env \
    ORGCHAT_COMPONENT_READY_FILE="$(component_ready_file "$n")" \
    ORGCHAT_METRICS_PORT="$(component_metrics_port "$n")" "$@" \
    "$ROOT/scripts/supervise.sh" "$RUN/component-$n.child" "$VENV/bin/orgchat" --config "$CONFIG" run
  wait_for "$READY_TIMEOUT" component_ready component_alive || rc=$?
  if ((rc)); then
    show_tail "$LOGS/component-$n.log" 40
    ((rc == 2)) && die "component $n exited before it was ready"
    die "component $n did not write .run/component-$n.ready within ${READY_TIMEOUT}s"
  fi
  say component "$n started, connected as biz.localhost (pid $(read_pid "$RUN/component-$n.child"))"
}

stop_component() {  # stop_component N: stop instance N gracefully (its supervisor passes SIGTERM on)
  local pid
  if pid=$(component_pid "$1"); then
    stop_pid "$pid" 20
    say component "$1 stopped (pid $pid)"
  fi
  rm -f "$RUN/component-$1.pid" "$RUN/component-$1.child" "$(component_ready_file "$1")"
}

ensure_component() {
  local n pid want why
  want=$(component_hash)
  # A single process of an older layout of the stack: replace it.
  if pid=$(pid_running "$RUN/component.pid" "$VENV/bin/orgchat "); then
    stop_pid "$pid" 15
    rm -f "$RUN/component.pid"
  fi
  for ((n = 1; n <= COMPONENTS; n++)); do
    INSTANCE=$n
    why=
    if pid=$(component_pid "$n"); then
      if [[ $(cat "$RUN/component.sha256" 2>/dev/null) != "$want" ]]; then
        why="code or configuration changed"
      elif ((EJABBERD_STARTED)); then
        why="ejabberd was restarted"
      elif ! component_ready; then
        why="not ready"
      else
        say component "$n running, connected as biz.localhost (pid $(read_pid "$RUN/component-$n.child"))"
        continue
      fi
      # Rolling: the other instances serve while this one restarts.
      say component "$n: $why: restarting"
      stop_component "$n"
    fi
    start_component "$n"
  done
  for ((n = COMPONENTS + 1; ; n++)); do  # instances beyond COMPONENTS, if it was lowered
    [[ -e $RUN/component-$n.pid ]] || break
    stop_component "$n"
  done
  echo "$want" >"$RUN/component.sha256"
}

# ---------------------------------------------------------------- cluster
# `make cluster`: a second ejabberd node on this machine, joined to node 1
# (NODE, started by `up`), with ports of its own (ejabberd-config/cluster.yml)
# and one component process attached to it. Its configuration, spool and logs
# are under .run/ejabberd2 and .run/log/node2; the two nodes share the Erlang
# cookie of the user who runs them (~/.erlang.cookie).

readonly EJ2=$RUN/ejabberd2 NODE2=orgchat2@localhost LOGS2=$LOGS/node2
readonly EJ2_PORTS=(5322 5447 5448 5449 5380)
readonly EJ2_FRAGMENTS=("$ROOT/ejabberd-config/cluster.yml" "$ROOT/ejabberd-config/dev.yml"
  "$ROOT/ejabberd-config/ejabberd.yml")
readonly NODE2_COMPONENT_PORT=5447 NODE2_API=http://127.0.0.1:5380/api NODE2_METRICS_PORT=9150
# cluster.yml's domain balanced by sender: its slots outlive its components.
readonly BALANCED_DOMAIN=biz-ordered.localhost

# Every call names its node: a cluster command sent to node 1 by mistake
# (join_cluster stops the node it runs on) must be impossible.
ejctl2() { ejabberdctl --config-dir "$EJ2" --spool "$EJ2/spool" --logs "$LOGS2" --node "$NODE2" "$@"; }
ejctl1() { ejabberdctl --config-dir "$EJ2" --spool "$EJ2/spool" --logs "$LOGS2" --node "$NODE" "$@"; }

node2_pid() {
  local pid c
  for pid in $(pgrep -f -- "-sname $NODE2 " || true); do
    c=$(cmdline "$pid") && [[ $c == *"$EJ2/spool"* ]] && alive "$pid" && { echo "$pid"; return; }
  done
  return 1
}
node2_alive() { node2_pid >/dev/null; }
node2_down() { ! node2_alive; }
node2_ready() { local p; for p in "${EJ2_PORTS[@]}"; do port_open "$p" || return 1; done; }
node2_joined() { ejctl2 list_cluster 2>/dev/null | grep -qx "$NODE"; }

write_node2_config() {
  local yml cfg
  mkdir -p "$EJ2/spool" "$EJ2/upload" "$LOGS2"
  # dev.yml without its macros and listeners: cluster.yml gives node 2's.
  yml="# Generated by scripts/stack.sh cluster-up; edit ejabberd-config/ instead.
define_macro:
  WEB_ROOT: \"$ROOT/web\"
  UPLOAD_ROOT: \"$EJ2/upload\"
include_config_file:
  \"${EJ2_FRAGMENTS[0]}\":
    disallow: []
  \"${EJ2_FRAGMENTS[1]}\":
    disallow: [define_macro, listen]
  \"${EJ2_FRAGMENTS[2]}\":
    disallow: []"
  cfg="# Generated by scripts/stack.sh cluster-up.
ERLANG_NODE=$NODE2
EJABBERD_CONFIG_PATH=$EJ2/ejabberd.yml
EJABBERD_PID_PATH=$EJ2/ejabberd.pid
INET_DIST_INTERFACE=127.0.0.1
ERL_EPMD_ADDRESS=127.0.0.1
EXEC_CMD=as_current_user"
  [[ $(cat "$EJ2/ejabberd.yml" 2>/dev/null) == "$yml" ]] || printf '%s\n' "$yml" >"$EJ2/ejabberd.yml"
  [[ $(cat "$EJ2/ejabberdctl.cfg" 2>/dev/null) == "$cfg" ]] || printf '%s\n' "$cfg" >"$EJ2/ejabberdctl.cfg"
  local f
  for f in inetrc ejabberd.pem; do
    cmp -s "/etc/ejabberd/$f" "$EJ2/$f" || cp "/etc/ejabberd/$f" "$EJ2/$f"
  done
}

wait_node2_ready() {
  wait_for "$READY_TIMEOUT" node2_ready node2_alive || {
    show_tail "$LOGS2/error.log" 20
    show_tail "$LOGS2/ejabberd.log" 40
    die "ejabberd node $NODE2 did not open ports ${EJ2_PORTS[*]} within ${READY_TIMEOUT}s"
  }
}

ensure_node2() {
  local p pid want
  write_node2_config
  ejctl1 status >/dev/null 2>&1 ||
    die "ejabberd node $NODE is not running: the cluster joins node 2 to it (make up first)"
  want=$(hash_of "$EJ2/ejabberd.yml" "$EJ2/ejabberdctl.cfg" "${EJ2_FRAGMENTS[@]}")
  if pid=$(node2_pid) && [[ $(cat "$EJ2/started.sha256" 2>/dev/null) != "$want" ]]; then
    say ejabberd2 "configuration changed: restarting node $NODE2 (pid $pid)"
    stop_pid "$pid" 30  # still a member: it rejoins when started again
  fi
  if node2_alive; then
    wait_node2_ready
  else
    for p in "${EJ2_PORTS[@]}"; do
      port_open "$p" && die "port $p is held by $(port_holder "$p"), not ejabberd node $NODE2"
    done
    rm -f "$EJ2/ejabberd.pid"
    ejctl2 start >>"$LOGS2/ejabberdctl.log" 2>&1 9>&- || {
      show_tail "$LOGS2/ejabberdctl.log"
      die "ejabberdctl start ($NODE2) failed"
    }
    echo "$want" >"$EJ2/started.sha256"
    wait_node2_ready
  fi
  if node2_joined; then
    say ejabberd2 "running (node $NODE2, pid $(node2_pid), in a cluster with $NODE)"
    return
  fi
  # Runs on node 2: it stops ejabberd there, copies node 1's tables and starts again.
  ejctl2 join_cluster "$NODE" >>"$LOGS2/ejabberdctl.log" 2>&1 9>&- || {
    show_tail "$LOGS2/ejabberdctl.log"
    die "ejabberdctl join_cluster $NODE (on $NODE2) failed"
  }
  wait_node2_ready
  node2_joined || die "$NODE2 joined $NODE but list_cluster does not show it"
  say ejabberd2 "started (node $NODE2, pid $(node2_pid)), joined to $NODE"
}

ensure_node2_component() {
  local pid
  INSTANCE=node2
  if pid=$(component_pid node2); then
    if [[ $(cat "$RUN/component-node2.sha256" 2>/dev/null) == "$(component_hash)" ]] && component_ready; then
      say component "node2 running, attached to $NODE2 (pid $(read_pid "$RUN/component-node2.child"))"
      return
    fi
    stop_component node2
  fi
  component_hash >"$RUN/component-node2.sha256"
  start_component node2 ORGCHAT_COMPONENT_PORT="$NODE2_COMPONENT_PORT" ORGCHAT_EJABBERD_API_URL="$NODE2_API"
}

cmd_cluster_up() {
  lock
  ensure_node2
  ensure_node2_component
  cat <<EOF

orgchat development cluster: node 2 is up beside node 1 ($NODE):
  node         $NODE2, config and spool in .run/ejabberd2, logs in .run/log/node2
  XMPP c2s     127.0.0.1:5322  (node 1: 5222), the same accounts
  component    biz.localhost on 127.0.0.1:$NODE2_COMPONENT_PORT, one process (metrics: http://127.0.0.1:$NODE2_METRICS_PORT/metrics)
  tests, bench component listeners 127.0.0.1:5448, 127.0.0.1:5449
  HTTP         http://127.0.0.1:5380 (/api, /ws, /bosh, /web)
EOF
}

# Node 2 leaves the cluster (node 1 forgets it) and stops; its spool goes, so
# that the next cluster-up joins afresh.
cluster_down() {
  local pid
  if [[ -e $RUN/component-node2.pid ]]; then stop_component node2; fi
  if pid=$(node2_pid); then
    if node2_joined; then
      # The balanced domain's empty slots would stay in node 1's route table.
      erl -noshell -sname "stack-$$" -eval "rpc:call('$NODE2', mnesia, dirty_delete,
        [route, <<\"$BALANCED_DOMAIN\">>]), init:stop()." >>"$LOGS2/ejabberdctl.log" 2>&1 9>&- || true
      # leave_cluster run on the leaving node stops it once node 1 has dropped it.
      ejctl2 leave_cluster "$NODE2" >>"$LOGS2/ejabberdctl.log" 2>&1 9>&- ||
        say ejabberd2 "leave_cluster failed (.run/log/node2/ejabberdctl.log); stopping it"
      wait_for "$READY_TIMEOUT" node2_down || true
    fi
    node2_alive && stop_pid "$pid" 30
    say ejabberd2 "left the cluster and stopped (node $NODE2, pid $pid)"
  elif [[ -d $EJ2/spool ]] && ejctl1 status >/dev/null 2>&1; then
    # Node 2 died in the cluster: node 1 removes it from its schema.
    ejctl1 leave_cluster "$NODE2" >>"$LOGS2/ejabberdctl.log" 2>&1 9>&- || true
    say ejabberd2 "not running; removed from $NODE's cluster"
  else
    say ejabberd2 "not running"
  fi
  rm -rf "$EJ2/spool"
}

cmd_cluster_status() {
  local pid
  if pid=$(node2_pid); then
    if node2_joined; then
      say ejabberd2 "running (node $NODE2, pid $pid), in a cluster with $NODE"
    else
      say ejabberd2 "running (node $NODE2, pid $pid), NOT in a cluster"
    fi
  else
    say ejabberd2 "not running"
  fi
  INSTANCE=node2
  if component_pid node2 >/dev/null; then
    component_ready && pid="ready" || pid="NOT ready"
    say component "node2 running (pid $(read_pid "$RUN/component-node2.child")), $pid"
  else
    say component "node2 not running"
  fi
}

# ---------------------------------------------------------------- commands

endpoints() {
  cat <<EOF

orgchat development stack is up:
  XMPP c2s     127.0.0.1:5222  vhost localhost, plain TCP allowed (STARTTLS optional)
  component    biz.localhost on 127.0.0.1:5347 (XEP-0114, secret in $CONFIG), $COMPONENTS processes
  web page     http://127.0.0.1:5280/web/  (a company's chat: ?company=SLUG)
  metrics      http://127.0.0.1:$(component_metrics_port 1)/metrics ... :$(component_metrics_port "$COMPONENTS")/metrics, one per process (health: /healthz)
  WebSocket    ws://127.0.0.1:5280/ws
  BOSH         http://127.0.0.1:5280/bosh
  HTTP API     $API (open to loopback, no credentials)
  PostgreSQL   postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB
  Redis        redis://127.0.0.1:$REDIS_PORT/0
  SMTP         127.0.0.1:$SMTP_PORT -> .run/mail/*.eml (the cascade's outgoing email)
  replies      127.0.0.1:2526 (the component's inbound SMTP: reply to an email's Reply-To)
  logs         .run/log/ (make logs)
EOF
  "$VENV/bin/python" scripts/demo_accounts.py list | sed 's/^/  /'
}

cmd_up() {
  local t0
  t0=$(now_ms)
  lock
  ensure_packages
  ensure_venv
  ensure_converse
  ensure_web
  ensure_postgres
  ensure_ejabberd_db
  ensure_redis
  ensure_ejabberd
  ensure_smtp
  # Accounts first: importing companies may put them in their agents' rosters.
  say accounts "$("$VENV/bin/python" scripts/demo_accounts.py register --api "$API")"
  orgchat_cli migrate migrate
  orgchat_cli import import demo/companies.json
  ensure_component
  endpoints
  local ms=$(($(now_ms) - t0))
  printf '\n[stack] up in %d.%01d s\n' $((ms / 1000)) $((ms % 1000 / 100))
}

cmd_down() {
  local pid version cluster
  lock
  cluster_down
  local n any=0 pidfile
  for pidfile in "$RUN"/component-*.pid; do
    [[ -e $pidfile ]] || continue
    n=${pidfile##*/component-}
    n=${n%.pid}
    component_pid "$n" >/dev/null && any=1
    stop_component "$n"
  done
  ((any)) || say component "not running"

  if pid=$(smtp_pid); then
    stop_pid "$pid" 10
    say smtp "stopped (pid $pid)"
  else
    say smtp "not running"
  fi
  rm -f "$RUN/smtp.pid"

  if pid=$(ejabberd_pid); then
    stop_ejabberd
    say ejabberd "stopped (node $NODE, pid $pid)"
  else
    say ejabberd "not running"
  fi

  if pid=$(redis_ours); then
    stop_pid "$pid" 10
    say redis "stopped (pid $pid, started by this stack)"
  else
    say redis "left alone (not started by this stack)"
  fi
  rm -f "$RUN/redis.pid"

  if { read -r version cluster <"$RUN/postgresql.ours"; } 2>/dev/null && [[ -n ${cluster:-} ]]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" stop >>"$LOGS/postgresql.log" 2>&1 9>&- || true
    say postgresql "stopped cluster $version/$cluster (started by this stack)"
  else
    say postgresql "left alone (not started by this stack)"
  fi
  rm -f "$RUN/postgresql.ours"
}

cmd_status() {
  local pid owner mails n
  if port_open "$PG_PORT"; then
    [[ -s $RUN/postgresql.ours ]] && owner="started by this stack" || owner="external"
    say postgresql "running on 127.0.0.1:$PG_PORT ($owner)"
  else
    say postgresql "not running"
  fi
  if port_open "$REDIS_PORT"; then
    redis_ours >/dev/null && owner="started by this stack" || owner="external"
    say redis "running on 127.0.0.1:$REDIS_PORT ($owner)"
  else
    say redis "not running"
  fi
  if pid=$(ejabberd_pid); then
    say ejabberd "running (node $NODE, pid $pid)"
  elif port_open 5222; then
    say ejabberd "not running; port 5222 is held by $(port_holder 5222)"
  else
    say ejabberd "not running"
  fi
  if pid=$(smtp_pid); then
    mails=$(find "$MAILDIR" -maxdepth 1 -name '*.eml' 2>/dev/null | wc -l)
    say smtp "running on 127.0.0.1:$SMTP_PORT (pid $pid, $mails mails in .run/mail/)"
  else
    say smtp "not running"
  fi
  for ((n = 1; n <= COMPONENTS; n++)); do
    INSTANCE=$n
    if component_pid "$n" >/dev/null; then
      component_ready && owner="ready" || owner="NOT ready"
      say component "$n running (pid $(read_pid "$RUN/component-$n.child")), $owner"
    else
      say component "$n not running"
    fi
  done
  if [[ -d $EJ2 ]]; then cmd_cluster_status; fi
}

# ---------------------------------------------------------------- faults
# The dependencies a fault test (bench/faults.py) restarts, each the way this
# script starts it. They take no lock: `up` may not run meanwhile anyway.

cmd_fault() {
  local version cluster pid
  case ${1:-} in
    postgres-restart)  # a real restart of the server on PG_PORT (about 2-3 s down)
      read -r version cluster < <(pg_lsclusters -h | awk -v p="$PG_PORT" '$3 == p {print $1, $2; exit}')
      [[ -n ${cluster:-} ]] || die "no PostgreSQL cluster on port $PG_PORT"
      pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" restart >>"$LOGS/postgresql.log" 2>&1
      wait_for "$READY_TIMEOUT" pg_port_open || die "PostgreSQL did not come back"
      ;;
    redis-restart-empty)  # shut Redis down without saving, start it again empty
      redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
      wait_for "$READY_TIMEOUT" redis_down || die "Redis did not stop"
      ensure_redis >/dev/null
      ;;
    ejabberd-restart)
      stop_ejabberd
      ensure_ejabberd >/dev/null
      ;;
    smtp-stop)
      if pid=$(smtp_pid); then stop_pid "$pid" 10; fi
      rm -f "$RUN/smtp.pid"
      ;;
    smtp-start)
      ensure_smtp >/dev/null
      ;;
    node2-stop)  # node 2 of `make cluster` stops, and stays a member of the cluster
      if pid=$(node2_pid); then stop_pid "$pid" 30; fi
      ;;
    node2-start)
      ensure_node2 >/dev/null
      ;;
    *)
      echo "usage: scripts/stack.sh fault postgres-restart|redis-restart-empty|ejabberd-restart|smtp-stop|smtp-start|node2-stop|node2-start" >&2
      exit 2
      ;;
  esac
}

redis_down() { ! redis_port_open; }

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  cluster-up) cmd_cluster_up ;;
  cluster-down) lock && cluster_down ;;
  cluster-status) cmd_cluster_status ;;
  venv) lock && ensure_venv ;;
  fault) cmd_fault "${2:-}" ;;
  *)
    echo "usage: scripts/stack.sh up|down|status|cluster-up|cluster-down|cluster-status|venv|fault NAME" >&2
    exit 2
    ;;
esac
