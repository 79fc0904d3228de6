#!/usr/bin/env bash
# uninstall.sh: undo install.sh. Stops the daemon and removes exactly what
# install.sh recorded in SYSCONFDIR/install.state: its files and directories,
# the re-injection listener (master.cf ends up byte for byte as before) and
# its private directory, the maillog_file setting, the logrotate file, and
# the users, groups and group memberships install.sh created.
# Anything that was there before the install stays. Run as root, with the
# same layout options as install.sh (it checks them against the record).
#
#   ./install/uninstall.sh [LAYOUT OPTIONS] [--keep-config]
#
# --keep-config keeps mailsubmit.conf and the authorization list.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. install/lib/common.sh
parse_options "$@"
[ "$(id -u)" -eq 0 ] || die "run as root"
. install/lib/state.sh
. install/lib/postfix.sh
. install/lib/daemon.sh

if [ -f "$STATE_FILE" ]; then
  declare -A option_of=([prefix]=--prefix [sysconfdir]=--sysconfdir [rundir]=--rundir [logdir]=--logdir [spooldir]=--spooldir [queuedir]=--queuedir
    [postfix_config]=--postfix-config [listener]=--listener [logrotate_dir]=--logrotate-dir
    [daemon_user]=--user [daemon_group]=--group)
  for key in "${STATE_LAYOUT_KEYS[@]}"; do
    value=$(recorded "$key" | tail -n 1)
    [ -n "$value" ] || continue
    option=${option_of[$key]:-}
    if [ -n "$option" ] && [[ " ${given_options[*]} " == *" $option "* ]] && [ "${!key}" != "$value" ]; then
      die "$STATE_FILE says this was installed with $option $value, not ${!key}: give the install's options"
    fi
    printf -v "$key" '%s' "$value"
  done
  derive_layout
  mapfile -t files < <(recorded file)
  mapfile -t dirs < <(recorded dir)
  mapfile -t listeners < <(recorded listener_added)
  mapfile -t maillog < <(recorded maillog_file)
  mapfile -t units < <(recorded unit)
  mapfile -t new_users < <(recorded created_user)
  mapfile -t new_groups < <(recorded created_group)
  mapfile -t memberships < <(recorded group_member)
else
  warn "no install record at $STATE_FILE: removing mailsubmit's own files from the layout given," \
    "but keeping the user and group (remove them with userdel/groupdel if install.sh created them)"
  files=("$HELPER" "$prefix/bin/mailsubmit-sendmail" "$prefix/bin/mailsubmit-qmail-queue" "$DAEMON" "$CTL"
    "$LIB_DIR/mailsubmitd.mjs" "$LIB_DIR/socket_addon.node" "$LIB_DIR/mailsubmitctl.cjs"
    "$prefix/share/man/man1/mailsubmit.1" "$prefix/share/man/man8/mailsubmit-sendmail.8" "$prefix/share/man/man8/mailsubmitd.8" "$prefix/share/man/man8/mailsubmitctl.8"
    "$prefix/share/man/man5/mailsubmit.conf.5" "$CONF_FILE" "$CONF_FILE.new" "$AUTH_LIST" "$LOG_FILE"
    "$MASTER_CF.mailsubmit-backup" "$sysconfdir/.set-postfix-maillog" "$LOGROTATE_FILE" "$DOOR_SOCKET" "$DOOR_LOCK_DIR/smtpd")
  dirs=("$LIB_DIR" "$rundir" "$logdir" "$spooldir" "$queuedir" "$queuedir/incoming" "$queuedir/ready" "$queuedir/state" "$sysconfdir" "$DOOR_DIR" "$(dirname "$DOOR_LOCK_DIR")" "$DOOR_LOCK_DIR")
  listeners=("$LISTENER_SERVICE" 127.0.0.1:10026)
  maillog=()
  [ -f "$sysconfdir/.set-postfix-maillog" ] && maillog=(/var/log/postfix.log)
  units=()
  if systemd_running; then
    for unit in "$SOCKET_UNIT_PATH" "$UNIT_PATH"; do [ -f "$unit" ] && units+=("$unit"); done
  fi
  new_users=()
  new_groups=()
  memberships=()
fi

# 1. The daemon: its socket first, which would start the service again.
for unit in $(printf '%s\n' "${units[@]}" | grep '\.socket$') $(printf '%s\n' "${units[@]}" | grep -v '\.socket$'); do
  if systemd_running; then
    systemctl disable --now "$(basename "$unit")" >/dev/null 2>&1 || true
  fi
  rm -f "$unit"
  systemd_running && systemctl daemon-reload
  say "stopped and removed the systemd unit $unit"
done
stop_background_daemon "$PID_FILE" "$LIB_DIR" "$daemon_user"
stop_stray_daemons "$LIB_DIR" "$daemon_user"
rm -f "$SOCKET_PATH" "$rundir/control.sock" "$PID_FILE"

# 2. Postfix: the listener blocks and the log setting install.sh added.
undo_postfix_changes

# 3. Files, then the directories install.sh made, deepest first, when empty.
kept=()
for file in "${files[@]}"; do
  if [ "$keep_config" -eq 1 ] && { [ "$file" = "$CONF_FILE" ] || [ "$file" = "$CONF_FILE.new" ] || [ "$file" = "$AUTH_LIST" ]; }; then
    [ -e "$file" ] && kept+=("$file")
    continue
  fi
  rm -f "$file"
done
rm -f "$STATE_FILE"
say "removed the programs from $prefix$([ "$keep_config" -eq 1 ] || printf ' and the configuration from %s' "$sysconfdir")"
for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
  dir=${dirs[$i]}
  [ -d "$dir" ] || continue
  if [ -n "$(ls -A "$dir")" ]; then
    [[ " ${kept[*]} " == *" $dir/"* ]] || warn "kept $dir: it holds files install.sh did not put there"
  else
    rmdir "$dir"
  fi
done
if [ "${#kept[@]}" -gt 0 ]; then
  # The kept configuration is still install.sh's: a later uninstall removes it.
  {
    printf '# Left by uninstall.sh --keep-config: the configuration install.sh created.\n'
    for key in "${STATE_LAYOUT_KEYS[@]}"; do printf '%s=%s\n' "$key" "${!key}"; done
    for dir in "${dirs[@]}"; do [ -d "$dir" ] && printf 'dir=%s\n' "$dir"; done
    for file in "${kept[@]}"; do printf 'file=%s\n' "$file"; done
  } >"$STATE_FILE"
  say "kept ${kept[*]} (listed in $STATE_FILE)"
fi

# 4. The accounts, only where install.sh created them; a membership it added
# to a user and a group that both stay.
for membership in "${memberships[@]}"; do
  group=${membership%%:*} user=${membership#*:}
  [[ " ${new_users[*]} " == *" $user "* ]] && continue
  [[ " ${new_groups[*]} " == *" $group "* ]] && continue
  getent passwd "$user" >/dev/null && getent group "$group" >/dev/null || continue
  # gpasswd says what it did on standard output; account_command would pass it on.
  account_command sh -c 'exec gpasswd -d "$0" "$1" >/dev/null' "$user" "$group"
  say "removed $user from group $group"
done
for user in "${new_users[@]}"; do
  getent passwd "$user" >/dev/null || continue
  # userdel also deletes the user's primary group when it has the user's name
  # (USERGROUPS_ENAB), even one that was there before the install. A group
  # that is not the primary one is left alone, so first point the user at
  # nogroup: the group and its gid never go away, not even for a moment.
  group=$(id -gn "$user")
  if [ "$group" = "$user" ] && [[ " ${new_groups[*]} " != *" $group "* ]] && getent group nogroup >/dev/null; then
    account_command usermod -g nogroup "$user"
  fi
  account_command userdel "$user"
  say "removed user $user"
done
for group in "${new_groups[@]}"; do
  # Perhaps gone with the user already (USERGROUPS_ENAB).
  if getent group "$group" >/dev/null; then account_command groupdel "$group"; fi
  say "removed group $group"
done
if getent passwd "$daemon_user" >/dev/null && [[ " ${new_users[*]} " != *" $daemon_user "* ]]; then
  say "kept user $daemon_user: install.sh did not create it"
fi
if getent group "$daemon_group" >/dev/null && [[ " ${new_groups[*]} " != *" $daemon_group "* ]]; then
  say "kept group $daemon_group: install.sh did not create it"
fi
say "done"
