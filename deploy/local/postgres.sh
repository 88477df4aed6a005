#!/usr/bin/env bash
# Private PostgreSQL cluster on 127.0.0.1 for dev/tests/CI. DEV/TEST ONLY: fsync, full_page_writes
# and synchronous_commit are off, so an OS crash or power loss can corrupt it (recreate: stop, rm -rf
# $CLIENTELE_STATE_DIR/pg). TCP login is scram-sha-256 only, as role `clientele` with the password
# in $CLIENTELE_STATE_DIR/pg/password; the `postgres` superuser is reachable only by peer auth on
# the private unix socket in $CLIENTELE_STATE_DIR/pg/run.
# usage: postgres.sh {start|stop|status}     Env: CLIENTELE_STATE_DIR, CLIENTELE_PG_PORT (15432)
set -euo pipefail
LOG_TAG=postgres
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$STATE/pg
DATA=$DIR/data
RUN=$DIR/run
LOGFILE=$DIR/log/postgres.log
DATABASES=(clientele_directory clientele_interactions clientele_pipeline clientele_campaigns
  clientele_notifier clientele_test)

find_bin() {
  local d
  d=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [[ -n $d && -x $d/initdb ]] && echo "$d"
}
PG_BIN=$(find_bin) || { apt_install postgresql; PG_BIN=$(find_bin) || die "PostgreSQL binaries not found"; }

as_pg() { (cd / && runuser -u postgres -- "$@"); }
pg_ctl() { as_pg "$PG_BIN/pg_ctl" -D "$DATA" "$@"; }
psql_su() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$PG_PORT" -U postgres "$@"; }

# The postgres user must be able to traverse every ancestor of $DIR (e.g. a root-owned 700 home).
ensure_traversable() {
  local path="" part
  local -a parts
  IFS=/ read -ra parts <<<"${DIR#/}"
  for part in "${parts[@]}"; do
    path+=/$part
    if ! as_pg test -x "$path"; then
      log "granting search (x) permission on $path to user postgres"
      if command -v setfacl >/dev/null; then setfacl -m u:postgres:x "$path"; else chmod o+x "$path"; fi
    fi
  done
}

init() {
  mkdir -p "$DIR"
  ensure_traversable
  install -d -o postgres -g postgres -m 700 "$DATA"
  install -d -o postgres -g postgres -m 755 "$RUN" "$(dirname "$LOGFILE")"
  secret "$DIR/password" >/dev/null
  [[ -s $DATA/PG_VERSION ]] && return 0
  log "initdb $DATA"
  as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 --no-sync \
    --auth-local=peer --auth-host=scram-sha-256 >"$DIR/initdb.log"
  cat >"$DATA/pg_hba.conf" <<'EOF'
# Written by deploy/local/postgres.sh. No trust auth: superuser via peer on the private socket only.
local all postgres               peer
local all all                    scram-sha-256
host  all all      127.0.0.1/32  scram-sha-256
EOF
  echo "include = 'clientele.conf'" >>"$DATA/postgresql.conf"
}

write_config() {
  as_pg tee "$DATA/clientele.conf" >/dev/null <<EOF
# Written by deploy/local/postgres.sh on every start. Dev/test instance: durability is off.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$RUN'
max_connections = 200
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
log_min_messages = warning
EOF
}

bootstrap() {
  local pw
  pw=$(<"$DIR/password")
  # The password goes through stdin (not argv); it is hex, so safe inside quotes.
  psql_su -d postgres <<EOF
\\set pw '$pw'
SELECT format('CREATE ROLE clientele LOGIN NOSUPERUSER NOCREATEROLE CREATEDB PASSWORD %L', :'pw')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clientele') \\gexec
SELECT format('ALTER ROLE clientele LOGIN PASSWORD %L', :'pw') \\gexec
EOF
  psql_su -d postgres -v dbs="${DATABASES[*]}" <<'EOF'
SELECT format('CREATE DATABASE %I OWNER clientele', d)
  FROM unnest(string_to_array(:'dbs', ' ')) AS d
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d) \gexec
EOF
}

running() { [[ -s $DATA/postmaster.pid ]] && pg_ctl status >/dev/null 2>&1; }

start() {
  init
  if running; then
    log "already running"
  else
    require_free_port "$PG_PORT" CLIENTELE_PG_PORT
    write_config
    log "starting on 127.0.0.1:$PG_PORT (log: $LOGFILE)"
    pg_ctl -l "$LOGFILE" -w -t 60 -s start 9>&- || { tail -n 30 "$LOGFILE" >&2; die "start failed"; }
  fi
  bootstrap
  log "ready: role clientele, databases ${DATABASES[*]}"
}

stop() {
  if running; then pg_ctl -m fast -w -t 60 -s stop; log "stopped"; else log "not running"; fi
}

status() {
  if running; then
    echo "postgres: running on 127.0.0.1:$PG_PORT (data $DATA)"
  else
    echo "postgres: stopped"; return 1
  fi
}

case ${1:-} in
  start) lock postgres; start ;;
  stop) lock postgres; stop ;;
  status) status ;;
  *) usage "start|stop|status" ;;
esac
