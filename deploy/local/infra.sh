#!/usr/bin/env bash
# Private local infrastructure (Kafka, PostgreSQL, Redis, an S3-compatible store on 127.0.0.1) for
# dev, tests and CI.
# usage: infra.sh {up|down|status|env}
#   up      start what is not given from outside (idempotent), write $CLIENTELE_STATE_DIR/env
#   down    stop what `up` starts (components given from outside are left alone)
#   status  show each component
#   env     print $CLIENTELE_STATE_DIR/env (`export NAME=value` lines; source it or eval it)
# A component is external (not started/stopped here) when its variable is set to a value other
# than the local one: KAFKA_BOOTSTRAP_SERVERS, POSTGRES_URL (server URL, services append
# /clientele_<service>), REDIS_URL, S3_ENDPOINT_URL (with S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY).
# Sourcing the env file written here therefore does not make the local components look external.
set -euo pipefail
LOG_TAG=infra
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ENVFILE=$STATE/env
COMPONENTS=(kafka:KAFKA_BOOTSTRAP_SERVERS postgres:POSTGRES_URL redis:REDIS_URL s3:S3_ENDPOINT_URL)

local_value() {
  case $1 in
    KAFKA_BOOTSTRAP_SERVERS) echo "127.0.0.1:$KAFKA_PORT" ;;
    POSTGRES_URL) mkdir -p "$STATE/pg" && echo "postgresql://clientele:$(secret "$STATE/pg/password")@127.0.0.1:$PG_PORT" ;;
    REDIS_URL) mkdir -p "$STATE/redis" && echo "redis://:$(secret "$STATE/redis/password")@127.0.0.1:$REDIS_PORT/0" ;;
    S3_ENDPOINT_URL) "$LOCAL_DIR/s3.sh" url ;;
    S3_ACCESS_KEY_ID) echo clientele ;;
    S3_SECRET_ACCESS_KEY) mkdir -p "$STATE/s3" && secret "$STATE/s3/secret" ;;
  esac
}
external() { [[ -n ${!1:-} && ${!1} != "$(local_value "$1")" ]]; }

# Before starting anything: every port of a component to start must be free (a half-started
# stack is worse than a clear message).
preflight() {
  local c ports entry
  for c in "${COMPONENTS[@]}"; do
    external "${c#*:}" && continue
    "$LOCAL_DIR/${c%%:*}.sh" status >/dev/null 2>&1 && continue  # ours, running
    case ${c%%:*} in
      kafka) ports=("$KAFKA_PORT:CLIENTELE_KAFKA_PORT" "$KAFKA_CONTROLLER_PORT:CLIENTELE_KAFKA_CONTROLLER_PORT") ;;
      postgres) ports=("$PG_PORT:CLIENTELE_PG_PORT") ;;
      redis) ports=("$REDIS_PORT:CLIENTELE_REDIS_PORT") ;;
      s3) ports=("$S3_PORT:CLIENTELE_S3_PORT") ;;
    esac
    for entry in "${ports[@]}"; do require_free_port "${entry%%:*}" "${entry#*:}"; done
  done
}

up() {
  preflight
  if ! command -v uv >/dev/null; then
    log "installing uv"
    command -v pip >/dev/null || apt_install python3-pip
    pip install -q uv || pip install -q --break-system-packages uv
  fi
  local c var
  for c in "${COMPONENTS[@]}"; do
    var=${c#*:}
    if external "$var"; then log "${c%%:*}: external ($var given)"; else "$LOCAL_DIR/${c%%:*}.sh" start; fi
  done
  (
    umask 077
    {
      printf 'export %s=%q\n' CLIENTELE_STATE_DIR "$STATE"
      for c in "${COMPONENTS[@]}"; do
        var=${c#*:}
        if external "$var"; then printf 'export %s=%q\n' "$var" "${!var}"
        else printf 'export %s=%q\n' "$var" "$(local_value "$var")"; fi
      done
      for var in S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY; do  # the key pair of the S3 store
        if external S3_ENDPOINT_URL; then [[ -z ${!var:-} ]] || printf 'export %s=%q\n' "$var" "${!var}"
        else printf 'export %s=%q\n' "$var" "$(local_value "$var")"; fi
      done
    } >"$ENVFILE.tmp"
  )
  mv "$ENVFILE.tmp" "$ENVFILE"
  log "up; environment in $ENVFILE"
}

down() {
  local i c
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    external "${c#*:}" || "$LOCAL_DIR/${c%%:*}.sh" stop
  done
}

status() {
  local c rc=0
  for c in "${COMPONENTS[@]}"; do
    if external "${c#*:}"; then echo "${c%%:*}: external (${c#*:} given)"
    else "$LOCAL_DIR/${c%%:*}.sh" status || rc=1; fi
  done
  return $rc
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) [[ -s $ENVFILE ]] || die "$ENVFILE missing: run $0 up"; cat "$ENVFILE" ;;
  *) usage "up|down|status|env" ;;
esac
