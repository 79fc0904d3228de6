# Steps 6 and 7: run the daemon, authorize the invoking user, first message.
# Under systemd the unit owns the run directory; otherwise the daemon runs in
# the background as $daemon_user with a pid file in $rundir and a log file.

prepare_rundir() {
  make_dir "$RUNDIR_MODE" "$daemon_user" "$daemon_group" "$rundir"
}

start_the_daemon() {
  prepare_rundir
  # As the daemon's user: it must be able to read what it trusts, and the run
  # directory is trusted only when root or that user owns it.
  as_daemon_user "$DAEMON" -c "$CONF_FILE" --check-config >/dev/null || die "the configuration has an error (see above)"
  # Whichever way an earlier install ran it, only one daemon may run.
  stop_background_daemon "$PID_FILE" "$LIB_DIR" "$daemon_user"
  if [ "$use_systemd" -eq 1 ] && systemd_running; then
    # A daemon of an earlier install may hold the socket's path itself.
    systemctl stop mailsubmitd.service 2>/dev/null || true
    install_unit
    systemctl daemon-reload
    systemctl enable mailsubmitd.socket mailsubmitd.service >/dev/null 2>&1
    systemctl restart mailsubmitd.socket
    systemctl start mailsubmitd.service
    say "mailsubmitd runs under systemd, which holds its socket (systemctl status mailsubmitd.socket mailsubmitd)"
  else
    if systemd_running && recorded unit | grep -qxF "$UNIT_PATH"; then
      systemctl disable --now mailsubmitd.socket mailsubmitd.service >/dev/null 2>&1 || true
      rm -f "$UNIT_PATH" "$SOCKET_UNIT_PATH"
      systemctl daemon-reload
      say "removed the systemd units of an earlier install (--no-systemd)"
    fi
    rm -f "$SOCKET_PATH"
    make_dir 0750 "$daemon_user" "$daemon_group" "$logdir"
    record file "$LOG_FILE"
    # The daemon's user owns the log directory: the log is opened by that
    # user, never by root, so a name planted there points nowhere it could
    # not write already. A log an older install.sh made as root is copied
    # into one of the daemon's user's own first.
    # Anything else under the log's name (a link, a FIFO) is removed, by that user.
    as_daemon_user sh -c 'umask 027
      if [ -L "$0" ] || { [ -e "$0" ] && [ ! -f "$0" ]; }; then rm -f "$0"; fi
      if [ -e "$0" ] && [ ! -w "$0" ]; then cat "$0" >"$0.new.$$" && mv -f "$0.new.$$" "$0"; fi
      exec "$@" >>"$0" 2>&1 </dev/null' "$LOG_FILE" "$DAEMON" -c "$CONF_FILE" --pid-file "$PID_FILE" \
      </dev/null >/dev/null 2>&1 &
    disown
    local why='systemd is not running here'
    [ "$use_systemd" -eq 0 ] && why='--no-systemd'
    say "$why: mailsubmitd started in the background (pid file $PID_FILE, log $LOG_FILE)"
  fi
  wait_for_socket
}

as_daemon_user() {
  setpriv --reuid="$daemon_user" --regid="$daemon_group" --init-groups "$@"
}

# stop_background_daemon PID_FILE LIB_DIR USER: stops the daemon the pid file
# names, after making sure the pid is that daemon (the file is writable by
# the daemon's user, so it is not trusted to name any other process).
stop_background_daemon() {
  local pid_file=$1 lib=$2 user=$3 pid
  [ -f "$pid_file" ] || return 0
  # Read as that user: in its run directory the name could be a link to a
  # file only root may read, or a FIFO that never ends.
  pid=$(timeout 5 setpriv --reuid="$user" --regid="$(id -g "$user" 2>/dev/null || echo 65534)" --clear-groups \
    head -c 32 -- "$pid_file" 2>/dev/null | tr -dc 0-9 || true)
  if [ -n "$pid" ] && is_our_daemon "$pid" "$lib" "$user"; then
    terminate_daemon "$pid"
    say "stopped mailsubmitd (pid $pid)"
  fi
  rm -f "$pid_file"
}

# A daemon of this install whose pid file is gone (removed by hand, or a
# start that raced another): found by its bundle's path and its user.
stop_stray_daemons() {
  local lib=$1 user=$2 cmdline pid
  for cmdline in $(grep -lsF "$lib/mailsubmitd.mjs" /proc/[0-9]*/cmdline || true); do
    pid=${cmdline#/proc/}
    pid=${pid%/cmdline}
    is_our_daemon "$pid" "$lib" "$user" 2>/dev/null || continue
    terminate_daemon "$pid"
    say "stopped mailsubmitd (pid $pid, which had no pid file)"
  done
}

# On SIGTERM the daemon lets submissions in progress finish for
# timeouts.shutdown seconds (30 unless configured): wait that long and a bit.
terminate_daemon() {
  local pid=$1 grace _
  grace=$(stop_grace)
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $((grace * 10))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  warn "mailsubmitd (pid $pid) did not stop in $grace s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

stop_grace() {
  local seconds
  seconds=$(awk '/^[ \t]*\[/ { table = $0 } table ~ /^[ \t]*\[timeouts\]/ && $1 == "shutdown" { sub(/^[^=]*=[ \t]*/, ""); print $1 }' \
    "$CONF_FILE" 2>/dev/null | tr -dc 0-9 || true)
  echo $((${seconds:-30} + 5))
}

is_our_daemon() {
  local pid=$1 lib=$2 user=$3
  [ -r "/proc/$pid/cmdline" ] || return 1
  # node, then the bundle: the launcher execs node with the bundle as its first argument.
  [ "$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n 2p)" = "$lib/mailsubmitd.mjs" ] || return 1
  [ "$(stat -c %U "/proc/$pid")" = "$user" ]
}

wait_for_socket() {
  local _
  for _ in $(seq 1 100); do
    [ -S "$SOCKET_PATH" ] && return 0
    sleep 0.1
  done
  # As the daemon's user, for the reason stop_background_daemon gives.
  if [ -f "$LOG_FILE" ]; then timeout 5 as_daemon_user tail -n 5 -- "$LOG_FILE" >&2 || true; fi
  die "mailsubmitd did not create $SOCKET_PATH; see $LOG_FILE or journalctl -u mailsubmitd"
}

# render_unit [TEMPLATE]: a shipped unit (mailsubmitd.service unless named),
# with this install's paths, account and modes. A run directory outside /run
# is not systemd's RuntimeDirectory: install.sh made it.
render_unit() {
  local template=${1:-install/files/mailsubmitd.service} runtime=${rundir#/run/}
  local outside_run='' no_door=''
  [ "$runtime" = "$rundir" ] && outside_run='/^RuntimeDirectory/d'
  [ "$listener" = private ] || no_door='/^SupplementaryGroups=/d'
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@CONF_FILE@|$CONF_FILE|g" -e "s|@STOP_TIMEOUT@|$(($(stop_grace) + 10))|g" \
    -e "s|@USER@|$daemon_user|g" -e "s|@GROUP@|$daemon_group|g" \
    -e "s|@RUNTIME_DIRECTORY@|$runtime|g" -e "s|@RUNDIR_MODE@|$RUNDIR_MODE|g" -e "s|@RUNDIR@|$rundir|g" -e "s|@SPOOL_DIR@|$spooldir|g" -e "s|@QUEUE_DIR@|$queuedir|g" \
    -e "s|@SOCKET@|$SOCKET_PATH|g" -e "s|@SOCKET_MODE@|$SOCKET_MODE|g" \
    -e "s|@MTA_GROUP@|$MTA_GROUP|g" -e "$outside_run" -e "$no_door" "$template"
}

# The service and its socket; the socket is recorded first, so that
# uninstall.sh stops it before the service it would start again.
install_unit() {
  render_unit install/files/mailsubmitd.socket >"$SOCKET_UNIT_PATH.tmp"
  mv -f "$SOCKET_UNIT_PATH.tmp" "$SOCKET_UNIT_PATH"
  record unit "$SOCKET_UNIT_PATH"
  render_unit >"$UNIT_PATH.tmp"
  mv -f "$UNIT_PATH.tmp" "$UNIT_PATH"
  record unit "$UNIT_PATH"
}

# The user who ran the install (through sudo, or root itself) may submit.
authorize_invoking_user() {
  local user=${SUDO_USER:-$(id -un)}
  "$CTL" --authorization-list "$AUTH_LIST" allow "$user" >/dev/null
  say "authorized $user to submit (mailsubmitctl list)"
}

submit_first_message() {
  local user=${SUDO_USER:-$(id -un)} reply
  say "submitting a first message from $user to $user through $HELPER:"
  reply=$(printf 'sender: %s\nrecipient: %s\n\nSubject: mailsubmit works\nFrom: %s\nTo: %s\n\nThis message came in through mailsubmit.\n' \
    "$user" "$user" "$user" "$user" | setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$HELPER" -v 2>&1) \
    || die "the first message was refused: $reply"
  say "  $reply"
}
