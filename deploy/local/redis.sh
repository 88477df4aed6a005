#!/usr/bin/env bash
# Private Redis on 127.0.0.1 for dev/tests/CI: AOF persistence, password (requirepass) generated once
# into $CLIENTELE_STATE_DIR/redis/password.
# usage: redis.sh {start|stop|status}     Env: CLIENTELE_STATE_DIR, CLIENTELE_REDIS_PORT (16379)
set -euo pipefail
LOG_TAG=redis
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$STATE/redis
PIDFILE=$DIR/redis.pid
CONF=$DIR/redis.conf
LOGFILE=$DIR/redis.log

cli() { REDISCLI_AUTH=$(<"$DIR/password") redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
ping() { [[ $(cli ping 2>/dev/null) == PONG ]]; }

start() {
  ensure_cmd redis-server redis-server
  if pid_alive "$PIDFILE" redis-server; then log "already running (pid $(<"$PIDFILE"))"; return 0; fi
  require_free_port "$REDIS_PORT" CLIENTELE_REDIS_PORT
  (umask 077 && cat >"$CONF" <<EOF
# Written by deploy/local/redis.sh on every start.
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $PIDFILE
logfile $LOGFILE
dir $DIR
appendonly yes
requirepass $(secret "$DIR/password")
EOF
  )
  log "starting on 127.0.0.1:$REDIS_PORT (log: $LOGFILE)"
  rm -f "$PIDFILE"
  redis-server "$CONF" 9>&- || die "redis-server failed to start"
  wait_until 10 "pid file" test -s "$PIDFILE" || { tail -n 20 "$LOGFILE" >&2; die "no pid file"; }
  WAIT_PIDFILE=$PIDFILE wait_until 30 "ping" ping || { tail -n 20 "$LOGFILE" >&2; die "not ready"; }
  log "ready (pid $(<"$PIDFILE"))"
}

status() {
  if pid_alive "$PIDFILE" redis-server && ping; then
    echo "redis: running (pid $(<"$PIDFILE")) on 127.0.0.1:$REDIS_PORT"
  else
    echo "redis: stopped"; return 1
  fi
}

mkdir -p "$DIR"
case ${1:-} in
  start) lock redis; start ;;
  stop) lock redis; stop_pid "$PIDFILE" 30 redis-server ;;
  status) status ;;
  *) usage "start|stop|status" ;;
esac
