#!/usr/bin/env bash
# Private IMAP server (Dovecot) on 127.0.0.1 for dev/tests: plaintext auth on loopback, one
# passwd-file user "clientele" whose password is generated once into $CLIENTELE_STATE_DIR/imap/password,
# maildirs under $CLIENTELE_STATE_DIR/imap/mail. The interactions service's IMAP poller reads it.
# usage: imap.sh {start|stop|status}     Env: CLIENTELE_STATE_DIR, CLIENTELE_IMAP_PORT (11143)
set -euo pipefail
LOG_TAG=imap
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAP_USER=clientele
DIR=$STATE/imap
CONF=$DIR/dovecot.conf
RUN=$DIR/run
PIDFILE=$RUN/master.pid
LOGFILE=$DIR/dovecot.log

dovecot_bin() { command -v dovecot 2>/dev/null || echo /usr/sbin/dovecot; }

# An IMAP greeting on the port.
greets() {
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$IMAP_PORT" || return 1
  read -r -t 2 line <&3 || { exec 3>&-; return 1; }
  exec 3>&-
  [[ $line == "* OK"* ]]
}

start() {
  [[ -x $(dovecot_bin) ]] || apt_install dovecot-imapd
  [[ -x $(dovecot_bin) ]] || die "dovecot is not installed and could not be installed"
  if pid_alive "$PIDFILE" dovecot; then log "already running (pid $(<"$PIDFILE"))"; return 0; fi
  require_free_port "$IMAP_PORT" CLIENTELE_IMAP_PORT
  local internal login mail_uid mail_gid
  if [[ $EUID -eq 0 ]]; then
    # Dovecot never gives mail access as root: mailboxes belong to its own unprivileged user.
    internal=dovecot login=dovenull
    mail_uid=$(id -u dovecot) mail_gid=$(id -g dovecot)
  else
    internal=$(id -un) login=$(id -un)
    mail_uid=$(id -u) mail_gid=$(id -g)
  fi
  mkdir -p "$RUN" "$DIR/lib" "$DIR/mail"
  [[ $EUID -ne 0 ]] || chown "$mail_uid:$mail_gid" "$DIR/mail"
  (umask 077 && printf '%s:{PLAIN}%s\n' "$IMAP_USER" "$(secret "$DIR/password")" >"$DIR/users")
  [[ $EUID -ne 0 ]] || chown "root:$internal" "$DIR/users" && chmod 640 "$DIR/users"
  cat >"$CONF" <<EOF
# Written by deploy/local/imap.sh on every start.
instance_name = clientele-imap
base_dir = $RUN
state_dir = $DIR/lib
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $LOGFILE
default_internal_user = $internal
default_internal_group = $(id -gn "$internal")
default_login_user = $login
first_valid_uid = $mail_uid
last_valid_uid = $mail_uid
first_valid_gid = $mail_gid
last_valid_gid = $mail_gid
mail_location = maildir:$DIR/mail/%u
mail_uid = $mail_uid
mail_gid = $mail_gid
namespace inbox {
  inbox = yes
  separator = /
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/users
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$DIR/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
EOF
  log "starting on 127.0.0.1:$IMAP_PORT (log: $LOGFILE)"
  rm -f "$PIDFILE"
  "$(dovecot_bin)" -c "$CONF" </dev/null >>"$LOGFILE" 2>&1 9>&- || { tail -n 20 "$LOGFILE" >&2 || true; die "dovecot failed to start"; }
  wait_until 10 "pid file" test -s "$PIDFILE" || { tail -n 20 "$LOGFILE" >&2; die "no pid file"; }
  WAIT_PIDFILE=$PIDFILE wait_until 30 "greeting" greets || { tail -n 20 "$LOGFILE" >&2; die "not ready"; }
  log "ready (pid $(<"$PIDFILE")), user $IMAP_USER, password in $DIR/password"
}

status() {
  if pid_alive "$PIDFILE" dovecot && greets; then
    echo "imap: running (pid $(<"$PIDFILE")) on 127.0.0.1:$IMAP_PORT"
  else
    echo "imap: stopped"; return 1
  fi
}

mkdir -p "$DIR"
case ${1:-} in
  start) lock imap; start ;;
  stop) lock imap; stop_pid "$PIDFILE" 30 dovecot ;;
  status) status ;;
  *) usage "start|stop|status" ;;
esac
