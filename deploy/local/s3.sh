#!/usr/bin/env bash
# Private S3-compatible object store on 127.0.0.1 for dev/tests/CI: moto's standalone server
# (moto[server], a locked development dependency in .venv), with the bucket
# "clientele-attachments" created at start. Objects live in the server's memory (large ones spill
# to $CLIENTELE_STATE_DIR/s3/tmp) and are gone when it stops: a double of S3 for development,
# not a store. It accepts any credentials; infra.sh hands out S3_ACCESS_KEY_ID=clientele and a
# secret generated once into $CLIENTELE_STATE_DIR/s3/secret, as a real store would need.
# usage: s3.sh {start|stop|status|url}     Env: CLIENTELE_STATE_DIR, CLIENTELE_S3_PORT (19000)
set -euo pipefail
LOG_TAG=s3
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUCKET=clientele-attachments
DIR=$STATE/s3
PIDFILE=$DIR/moto.pid
LOGFILE=$DIR/moto.log
MOTO=$REPO_ROOT/.venv/bin/moto_server

# http METHOD PATH: the status code of one plain HTTP/1.1 request to the server.
http() {
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT" || return 1
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' \
    "$1" "$2" "$S3_PORT" >&3
  read -r -t 5 line <&3 || { exec 3>&-; return 1; }
  exec 3>&-
  line=${line#HTTP/1.? }
  echo "${line%% *}"
}
answers() { [[ $(http GET /) == 200 ]]; }

start() {
  if [[ ! -x $MOTO ]]; then
    local uv
    uv=$(command -v uv || echo "$HOME/.local/bin/uv")
    log "installing the locked Python dependencies (moto_server is missing)"
    (cd "$REPO_ROOT" && "$uv" sync --frozen --quiet --compile-bytecode) || die "uv sync failed"
  fi
  [[ -x $MOTO ]] || die "$MOTO is missing after uv sync"
  if pid_alive "$PIDFILE" moto_server; then log "already running (pid $(<"$PIDFILE"))"; return 0; fi
  require_free_port "$S3_PORT" CLIENTELE_S3_PORT
  mkdir -p "$DIR/tmp"
  secret "$DIR/secret" >/dev/null
  log "starting on 127.0.0.1:$S3_PORT (log: $LOGFILE)"
  rm -f "$PIDFILE"
  # setsid: own session, survives the calling shell; fd 9 (our lock) must not leak into it.
  TMPDIR=$DIR/tmp nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
    "$MOTO" -H 127.0.0.1 -p "$S3_PORT" </dev/null >>"$LOGFILE" 2>&1 9>&- &
  wait_until 5 "pid file" test -s "$PIDFILE" || true
  if ! WAIT_PIDFILE=$PIDFILE wait_until 60 "answer" answers; then
    tail -n 20 "$LOGFILE" >&2 || true
    stop_pid "$PIDFILE" 10 moto_server
    die "not ready"
  fi
  local created
  created=$(http PUT "/$BUCKET") || die "could not create the bucket $BUCKET"
  [[ $created == 200 ]] || die "creating the bucket $BUCKET answered $created"
  log "ready (pid $(<"$PIDFILE")), bucket $BUCKET"
}

status() {
  if pid_alive "$PIDFILE" moto_server && answers; then
    echo "s3: running (pid $(<"$PIDFILE")) on http://127.0.0.1:$S3_PORT (moto)"
  else
    echo "s3: stopped"; return 1
  fi
}

mkdir -p "$DIR"
case ${1:-} in
  start) lock s3; start ;;
  stop) lock s3; stop_pid "$PIDFILE" 30 moto_server ;;
  status) status ;;
  url) echo "http://127.0.0.1:$S3_PORT" ;;
  *) usage "start|stop|status|url" ;;
esac
