# shellcheck shell=bash
# Common helpers for the private local infrastructure (dev, tests, CI; loopback only, no Docker).
# Sourced by kafka.sh, postgres.sh, redis.sh and infra.sh.
set -euo pipefail

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LOCAL_DIR/../.." && pwd)
STATE=${CLIENTELE_STATE_DIR:-$REPO_ROOT/.state}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)

# shellcheck disable=SC2034 # used by the sourcing scripts
{
  KAFKA_PORT=${CLIENTELE_KAFKA_PORT:-19092}
  KAFKA_CONTROLLER_PORT=${CLIENTELE_KAFKA_CONTROLLER_PORT:-19093}
  PG_PORT=${CLIENTELE_PG_PORT:-15432}
  REDIS_PORT=${CLIENTELE_REDIS_PORT:-16379}
  S3_PORT=${CLIENTELE_S3_PORT:-19000}
  IMAP_PORT=${CLIENTELE_IMAP_PORT:-11143}
}

log() { printf '[%s %s] %s\n' "$(date +%T)" "${LOG_TAG:-local}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Install Debian packages; `apt-get update` only if the plain install fails.
apt_install() {
  local sudo=()
  [[ $EUID -eq 0 ]] || sudo=(sudo)
  log "installing: $*"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "$@" >&2 \
    || { "${sudo[@]}" apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "$@" >&2; }
}

# ensure_cmd COMMAND PACKAGE...: install PACKAGE(s) when COMMAND is not on PATH.
ensure_cmd() { command -v "$1" >/dev/null 2>&1 || apt_install "${@:2}"; }

# Create a random hex secret once (file mode 600) and print it.
secret() {
  local file=$1
  if [[ ! -s $file ]]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

# elapsed START: seconds (3 decimals) since START, a saved $EPOCHREALTIME.
elapsed() {
  local ms=$(((${EPOCHREALTIME//[.,]/} - ${1//[.,]/}) / 1000))
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# require_free_port PORT VARIABLE: fail, naming the variable to set, when a process that this
# checkout's state dir does not know (another clone's stack, another program) holds PORT.
require_free_port() {
  port_open "$1" || return 0
  die "port $1 is taken by a process not started from $STATE (another clone's stack?): set $2 to a free port (and CLIENTELE_STATE_DIR to keep a second instance apart), or stop that process"
}

# wait_until TIMEOUT_S DESCRIPTION CMD...: poll CMD every 0.25 s; fail after TIMEOUT_S.
# If $WAIT_PIDFILE is set and its process dies, fail early.
wait_until() {
  local timeout=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [[ -n ${WAIT_PIDFILE:-} ]] && ! pid_alive "$WAIT_PIDFILE"; then
      log "$what: process exited"; return 1
    fi
    ((SECONDS < deadline)) || { log "$what: not ready after ${timeout}s"; return 1; }
    sleep 0.25
  done
}

# proc_running PID: alive and not a zombie (an init that reaps slowly leaves exited daemons as
# zombies for a while, and kill -0 succeeds on zombies).
proc_running() { kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }

# pid_alive PIDFILE [CMDLINE_PATTERN]: true if the recorded process runs (and matches).
pid_alive() {
  local pid
  [[ -s $1 ]] && pid=$(<"$1") && [[ $pid =~ ^[0-9]+$ ]] && proc_running "$pid" || return 1
  [[ -z ${2:-} ]] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# stop_pid PIDFILE [TIMEOUT_S=30] [CMDLINE_PATTERN]: SIGTERM, wait, then SIGKILL; removes the pid file.
stop_pid() {
  local file=$1 timeout=${2:-30} pid
  if ! pid_alive "$file" "${3:-}"; then
    rm -f "$file"; log "not running"; return 0
  fi
  pid=$(<"$file")
  log "stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while proc_running "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if proc_running "$pid"; then
    log "still running after ${timeout}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while proc_running "$pid"; do sleep 0.1; done
  fi
  rm -f "$file"
  log "stopped"
}

# Serialize concurrent invocations for one component (e.g. parallel test runs).
lock() { exec 9>"$STATE/.$1.lock"; flock -w 300 9 || die "timeout waiting for lock $STATE/.$1.lock"; }

usage() { echo "usage: $0 {$1}" >&2; exit 2; }
