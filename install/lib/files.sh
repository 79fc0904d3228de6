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
  if [ ! -e "$AUTH_LIST" ]; then
    sed "s|@AUTH_LIST@|$AUTH_LIST|g" install/files/authorized >"$AUTH_LIST.tmp"
    chmod 0644 "$AUTH_LIST.tmp"
    mv -f "$AUTH_LIST.tmp" "$AUTH_LIST"
    record file "$AUTH_LIST"
    say "wrote an empty authorization list, $AUTH_LIST"
  fi
}

render_config() {
  local socket_mode=0660
  [ "$install_mode" = open ] && socket_mode=0666
  sed -e "s|@CONF_FILE@|$CONF_FILE|g" \
    -e "s|@SOCKET@|$SOCKET_PATH|g" \
    -e "s|@CONTROL_SOCKET@|$rundir/control.sock|g" \
    -e "s|@INSTALL_MODE@|$install_mode|g" \
    -e "s|@SOCKET_MODE@|$socket_mode|g" \
    -e "s|@GROUP@|$daemon_group|g" \
    -e "s|@AUTH_LIST@|$AUTH_LIST|g" \
    -e "s|@TARGET@|$listener|g" \
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
