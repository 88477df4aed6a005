#!/usr/bin/env bash
# The five Clientele services on loopback: migrate, start, wait until ready, print their URLs.
# usage: services.sh {up|down|status}
LOG_TAG=services
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(directory:8001 interactions:8002 pipeline:8003 campaigns:8004 notifier:8005)
RUN=$STATE/services
KEYS=$STATE/keys

service_env() {
  # shellcheck source=/dev/null
  source "$STATE/env"
  export AUTH_PUBLIC_KEY_FILE=${AUTH_PUBLIC_KEY_FILE:-$KEYS/public.pem}
  export AUTH_PRIVATE_KEY_FILE=${AUTH_PRIVATE_KEY_FILE:-$KEYS/private.pem}
}

ready() { curl -fsS "http://127.0.0.1:$1/health/ready" >/dev/null; }

up() {
  mkdir -p "$RUN"
  [[ -s $STATE/env ]] || die "no $STATE/env: run deploy/local/infra.sh up first"
  cd "$REPO_ROOT"
  .venv/bin/clientele-token keygen --dir "$KEYS" >/dev/null
  service_env
  local entry name port
  for entry in "${SERVICES[@]}"; do
    name=${entry%%:*}
    .venv/bin/clientele migrate "$name"
  done
  for entry in "${SERVICES[@]}"; do
    name=${entry%%:*} port=${entry##*:}
    if pid_alive "$RUN/$name.pid"; then continue; fi
    HTTP_PORT=$port setsid .venv/bin/clientele serve "$name" >"$RUN/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
  done
  for entry in "${SERVICES[@]}"; do
    name=${entry%%:*} port=${entry##*:}
    WAIT_PIDFILE=$RUN/$name.pid wait_until 60 "$name" ready "$port" \
      || { tail -20 "$RUN/$name.log" >&2; die "$name did not become ready"; }
  done
  printf '\nClientele is up:\n'
  for entry in "${SERVICES[@]}"; do
    printf '  %-13s http://127.0.0.1:%s/docs\n' "${entry%%:*}" "${entry##*:}"
  done
  printf '\nA token for trying the APIs (admin, all directions):\n'
  printf '  uv run clientele-token mint --key %s --sub admin --roles admin\n' "$KEYS/private.pem"
}

down() {
  local entry
  for entry in "${SERVICES[@]}"; do stop_pid "$RUN/${entry%%:*}.pid" 20; done
}

status() {
  local entry
  for entry in "${SERVICES[@]}"; do
    if ready "${entry##*:}"; then echo "${entry%%:*}: ready"; else echo "${entry%%:*}: down"; fi
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) usage "up|down|status" ;;
esac
