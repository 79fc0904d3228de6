# Steps 6 and 7: run the daemon, authorize the invoking user, first message.

start_daemon() {
  local prefix=$1
  install -d -o "$MAILSUBMIT_USER" -g "$MAILSUBMIT_GROUP" -m 0750 "$RUN_DIR"
  "$prefix/sbin/mailsubmitd" --check-config >/dev/null || die "the configuration has an error (see above)"
  if systemd_running; then
    install_unit "$prefix"
    systemctl daemon-reload
    systemctl enable --now mailsubmitd.service >/dev/null
    systemctl restart mailsubmitd.service
    say "mailsubmitd runs under systemd (systemctl status mailsubmitd)"
  else
    stop_background_daemon
    install -d -o "$MAILSUBMIT_USER" -g "$MAILSUBMIT_GROUP" -m 0750 "$(dirname "$LOG_FILE")"
    setpriv --reuid="$MAILSUBMIT_USER" --regid="$MAILSUBMIT_GROUP" --init-groups \
      "$prefix/sbin/mailsubmitd" --pid-file "$PID_FILE" >>"$LOG_FILE" 2>&1 </dev/null &
    disown
    say "systemd is not running here: mailsubmitd started in the background (pid file $PID_FILE, log $LOG_FILE)"
  fi
  wait_for_socket
}

stop_background_daemon() {
  [ -f "$PID_FILE" ] || return 0
  local pid
  pid=$(cat "$PID_FILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PID_FILE"
}

wait_for_socket() {
  for _ in $(seq 1 100); do
    [ -S "$SOCKET_PATH" ] && return 0
    sleep 0.1
  done
  die "mailsubmitd did not create $SOCKET_PATH; see $LOG_FILE or journalctl -u mailsubmitd"
}

install_unit() {
  local prefix=$1
  sed "s#@PREFIX@#$prefix#g" install/files/mailsubmitd.service >"$UNIT_PATH.tmp"
  mv -f "$UNIT_PATH.tmp" "$UNIT_PATH"
}

# The user who ran the install (through sudo, or root itself) may submit.
authorize_invoking_user() {
  local prefix=$1 user=${SUDO_USER:-$(id -un)}
  "$prefix/sbin/mailsubmitctl" allow "$user" >/dev/null
  say "authorized $user to submit (mailsubmitctl list)"
}

submit_first_message() {
  local prefix=$1 user=${SUDO_USER:-$(id -un)} reply
  say "submitting a first message from $user to $user through $prefix/bin/mailsubmit:"
  reply=$(printf 'sender: %s\nrecipient: %s\n\nSubject: mailsubmit works\nFrom: %s\nTo: %s\n\nThis message came in through mailsubmit.\n' \
    "$user" "$user" "$user" "$user" | setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$prefix/bin/mailsubmit" -v 2>&1) \
    || die "the first message was refused: $reply"
  say "  $reply"
}
