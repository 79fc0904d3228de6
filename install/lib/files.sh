# Steps 3 and 4: the account and the installed files. Everything created is
# entered in the install record (state.sh) for uninstall.sh.

ensure_account() {
  if ! getent group "$daemon_group" >/dev/null; then
    account_command groupadd --system "$daemon_group"
    record created_group "$daemon_group"
    say "created group $daemon_group"
  fi
  if ! getent passwd "$daemon_user" >/dev/null; then
    account_command useradd --system --gid "$daemon_group" --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin --comment "mailsubmit daemon" "$daemon_user"
    record created_user "$daemon_user"
    say "created user $daemon_user"
  fi
  [ "$listener" = private ] && ensure_mta_group
  return 0
}

# The group that may pass through the private listener's directory, with
# the daemon's user as its only member: the helper's group must not.
ensure_mta_group() {
  local members
  if ! getent group "$MTA_GROUP" >/dev/null; then
    account_command groupadd --system "$MTA_GROUP"
    record created_group "$MTA_GROUP"
    say "created group $MTA_GROUP (only $daemon_user: the way into Postfix)"
  fi
  if ! id -nG "$daemon_user" | tr ' ' '\n' | grep -qxF "$MTA_GROUP"; then
    account_command usermod -a -G "$MTA_GROUP" "$daemon_user"
    record group_member "$MTA_GROUP:$daemon_user"
    say "added $daemon_user to group $MTA_GROUP"
  fi
  members=$(getent group "$MTA_GROUP" | cut -d: -f4 | tr ',' '\n' | grep -vxF "$daemon_user" || true)
  [ -z "$members" ] || warn "group $MTA_GROUP has members besides $daemon_user ($(printf '%s ' $members)): they can reach Postfix's re-injection listener"
}

install_files() {
  local helper_build
  make_dir 0755 root root "$prefix/bin"
  make_dir 0755 root root "$prefix/sbin"
  make_dir 0755 root root "$LIB_DIR"
  # Ours by name even when an earlier install left it behind without a record.
  record dir "$LIB_DIR"

  helper_build=$(build_helper)
  if [ "$install_mode" = setgid ]; then
    # Set-gid: the helper, and only the helper, may connect to the 0660 socket.
    install -o root -g "$daemon_group" -m 2755 "$helper_build" "$HELPER"
  else
    # No set-gid: the socket is open and the daemon's SO_PEERCRED check decides alone.
    install -o root -g root -m 0755 "$helper_build" "$HELPER"
  fi
  rm -rf "$(dirname "$helper_build")"
  record file "$HELPER"
  install_front_doors

  local bundle
  for bundle in packages/submit-daemon/dist/mailsubmitd.mjs packages/submit-daemon/dist/socket_addon.node \
    packages/admin-cli/dist/mailsubmitctl.cjs; do
    install -o root -g root -m 0644 "$bundle" "$LIB_DIR/$(basename "$bundle")"
    record file "$LIB_DIR/$(basename "$bundle")"
  done
  write_launchers
  install_config
  install_logrotate
  # The daemon's own: it refuses to start unless nobody else has any access.
  make_dir 0700 "$daemon_user" "$daemon_group" "$spooldir"
  # The local queue, the same way; its subdirectories too, so that uninstall.sh
  # removes them when empty and keeps them (and the mail in them) otherwise.
  local sub
  make_dir 0700 "$daemon_user" "$daemon_group" "$queuedir"
  for sub in incoming ready state; do make_dir 0700 "$daemon_user" "$daemon_group" "$queuedir/$sub"; done
  if [ "$install_mode" = setgid ]; then
    say "installed mailsubmit in $prefix (helper $HELPER, set-gid $daemon_group)"
  else
    say "installed mailsubmit in $prefix (helper $HELPER, not set-gid: the socket is open, the daemon checks every caller)"
  fi
}

# The other front doors are the same binary under another name: the helper
# picks its mode from the basename of argv[0], and a symlink keeps the
# set-gid bits on the one file. Relative, so a staged or moved prefix keeps
# working. A file of that name that is not our link is the administrator's:
# it is left alone and not recorded.
install_front_doors() {
  local door path
  for door in mailsubmit-sendmail mailsubmit-qmail-queue; do
    path="$(dirname "$HELPER")/$door"
    if [ -e "$path" ] || [ -L "$path" ]; then
      if [ "$(readlink "$path" 2>/dev/null)" != mailsubmit ]; then
        warn "kept $path: it is not install.sh's link to mailsubmit, so the $door front door is not installed"
        continue
      fi
    fi
    ln -sfn mailsubmit "$path"
    record file "$path"
  done
}

# Two-line launchers: the bundles need only Node.js. Outside the default
# sysconfdir they carry the configuration's path, so that the installed
# commands work on their own installation without extra options.
write_launchers() {
  local daemon_args='' ctl_args=''
  if [ "$sysconfdir" != /etc/mailsubmit ]; then
    daemon_args=" -c $CONF_FILE"
    if node "$LIB_DIR/mailsubmitctl.cjs" --help 2>/dev/null | grep -q -- '--config <'; then
      ctl_args=" -c $CONF_FILE"
    else
      ctl_args=" --authorization-list $AUTH_LIST"
    fi
  fi
  write_launcher "$DAEMON" "$LIB_DIR/mailsubmitd.mjs$daemon_args"
  write_launcher "$CTL" "$LIB_DIR/mailsubmitctl.cjs$ctl_args"
}

write_launcher() {
  local path=$1 target=$2 node
  node=$(command -v node)
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$node" "$target" >"$path.tmp"
  chmod 0755 "$path.tmp"
  mv -f "$path.tmp" "$path"
  record file "$path"
}

# The configuration carries every path and name this install chose. An
# existing file is the administrator's and is kept; when the options given
# would write a different one, it goes beside it as mailsubmit.conf.new.
install_config() {
  local rendered
  rendered=$(mktemp /tmp/mailsubmit-conf-XXXXXX)
  render_config >"$rendered"
  if [ -e "$CONF_FILE" ]; then migrate_target; fi
  if [ ! -e "$CONF_FILE" ]; then
    install -o root -g root -m 0644 "$rendered" "$CONF_FILE"
    record file "$CONF_FILE"
    say "wrote $CONF_FILE"
  elif ! cmp -s "$rendered" "$CONF_FILE"; then
    install -o root -g root -m 0644 "$rendered" "$CONF_FILE.new"
    record file "$CONF_FILE.new"
    warn "kept your $CONF_FILE; these options would write $CONF_FILE.new: compare them (diff -u $CONF_FILE $CONF_FILE.new)"
  fi
  rm -f "$rendered"
  # Set-gid: readable by the helper's group, which reads it as the caller's
  # first check; without set-gid the helper reads it as the caller.
  local list_group=$daemon_group list_mode=0640
  [ "$install_mode" = open ] && list_group=root list_mode=0644
  if [ ! -e "$AUTH_LIST" ]; then
    sed "s|@AUTH_LIST@|$AUTH_LIST|g" install/files/authorized >"$AUTH_LIST.tmp"
    chown "root:$list_group" "$AUTH_LIST.tmp"
    chmod "$list_mode" "$AUTH_LIST.tmp"
    mv -f "$AUTH_LIST.tmp" "$AUTH_LIST"
    record file "$AUTH_LIST"
    say "wrote an empty authorization list, $AUTH_LIST"
  elif [ -f "$AUTH_LIST" ] && [ ! -L "$AUTH_LIST" ] && [ "$(stat -c '%u %G %a' "$AUTH_LIST")" != "0 $list_group ${list_mode#0}" ]; then
    # In SYSCONFDIR, which only root can write: no one else can swap it.
    chown "root:$list_group" "$AUTH_LIST"
    chmod "$list_mode" "$AUTH_LIST"
    say "$AUTH_LIST is now $list_mode root:$list_group"
  fi
}

# The daemon's log (written only when it runs without systemd) is rotated
# as the daemon's user (su in the stanza), which owns the directory: root
# never follows a name in it. copytruncate, because mailsubmitd writes its
# log to standard output, opened by its launcher, and cannot reopen it.
install_logrotate() {
  make_dir 0755 root root "$logrotate_dir"
  sed -e "s|@LOG_FILE@|$LOG_FILE|g" -e "s|@USER@|$daemon_user|g" -e "s|@GROUP@|$daemon_group|g" \
    install/files/mailsubmitd.logrotate >"$LOGROTATE_FILE.tmp"
  chmod 0644 "$LOGROTATE_FILE.tmp"
  mv -f "$LOGROTATE_FILE.tmp" "$LOGROTATE_FILE"
  record file "$LOGROTATE_FILE"
}

# The TCP listener an earlier install added is taken out of master.cf
# (postfix.sh): an install.sh-written target naming it follows the listener.
migrate_target() {
  local old
  for old in $(recorded listener_added); do
    [ "$old" != "$LISTENER_SERVICE" ] && [[ $old == 127.* ]] || continue
    grep -qxF "target = \"$old\"" "$CONF_FILE" || continue
    sed "s|^target = \"$old\"\$|target = \"$DOWNSTREAM_TARGET\"|" "$CONF_FILE" >"$CONF_FILE.tmp"
    chown --reference="$CONF_FILE" "$CONF_FILE.tmp"
    chmod --reference="$CONF_FILE" "$CONF_FILE.tmp"
    mv -f "$CONF_FILE.tmp" "$CONF_FILE"
    say "$CONF_FILE: downstream.target is now $DOWNSTREAM_TARGET (was $old)"
  done
}

render_config() {
  local spool_line=''
  [ "$spooldir" = /var/lib/mailsubmit/spool ] || spool_line="s|^#spool_directory = .*|spool_directory = \"$spooldir\"|"
  # Who wrote it: install.sh, or the Debian package (debian/render-files.sh sets these).
  sed -e "s|@INSTALLER@|${INSTALLER:-install.sh}|g" \
    -e "s|@TO_MOVE_THEM@|${TO_MOVE_THEM:-by installing again (install.sh --rundir / --sysconfdir)}|g" \
    -e "s|@LISTENER_STEP@|${LISTENER_STEP:-install.sh}|g" \
    -e "s|@CONF_FILE@|$CONF_FILE|g" \
    -e "s|@SOCKET@|$SOCKET_PATH|g" \
    -e "s|@CONTROL_SOCKET@|$rundir/control.sock|g" \
    -e "s|@INSTALL_MODE@|$install_mode|g" \
    -e "s|@SOCKET_MODE@|$SOCKET_MODE|g" \
    -e "s|@GROUP@|$daemon_group|g" \
    -e "s|@AUTH_LIST@|$AUTH_LIST|g" \
    -e "s|@TARGET@|$DOWNSTREAM_TARGET|g" \
    -e "s|@QUEUE_DIR@|$queuedir|g" \
    -e "$spool_line" \
    install/files/mailsubmit.conf
}

# The man pages (lib/man.sh installs them): their directories and files go
# into the record first, the same way man.sh finds them in build/man.
install_man_pages_recorded() {
  local page section
  for page in build/man/man*/*; do
    [ -f "$page" ] || continue
    section=$(basename "$(dirname "$page")")
    make_dir 0755 root root "$prefix/share/man/$section"
    record file "$prefix/share/man/$section/$(basename "$page")"
  done
  install_man_pages "$prefix"
}
