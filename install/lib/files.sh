# Steps 3 and 4: the account and the installed files.

ensure_account() {
  if ! getent group "$MAILSUBMIT_GROUP" >/dev/null; then
    groupadd --system "$MAILSUBMIT_GROUP"
    say "created group $MAILSUBMIT_GROUP"
  fi
  if ! getent passwd "$MAILSUBMIT_USER" >/dev/null; then
    useradd --system --gid "$MAILSUBMIT_GROUP" --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin --comment "mailsubmit daemon" "$MAILSUBMIT_USER"
    say "created user $MAILSUBMIT_USER"
  fi
}

# install_files PREFIX
install_files() {
  local prefix=$1 lib=$1/lib/mailsubmit
  install -d -m 0755 "$prefix/bin" "$prefix/sbin" "$lib"
  # The helper: set-gid mailsubmit, so that it (and only it) may connect to the socket.
  install -o root -g "$MAILSUBMIT_GROUP" -m 2755 packages/submit-helper/build/mailsubmit "$prefix/bin/mailsubmit"
  install -o root -g root -m 0644 packages/submit-daemon/dist/mailsubmitd.mjs "$lib/mailsubmitd.mjs"
  install -o root -g root -m 0644 packages/submit-daemon/dist/socket_addon.node "$lib/socket_addon.node"
  install -o root -g root -m 0644 packages/admin-cli/dist/mailsubmitctl.cjs "$lib/mailsubmitctl.cjs"
  write_launcher "$prefix/sbin/mailsubmitd" "$lib/mailsubmitd.mjs"
  write_launcher "$prefix/sbin/mailsubmitctl" "$lib/mailsubmitctl.cjs"
  install -d -o root -g root -m 0755 "$CONF_DIR"
  if [ ! -e "$CONF_DIR/mailsubmit.conf" ]; then
    install -o root -g root -m 0644 install/files/mailsubmit.conf "$CONF_DIR/mailsubmit.conf"
    say "wrote $CONF_DIR/mailsubmit.conf"
  fi
  if [ ! -e "$CONF_DIR/authorized" ]; then
    install -o root -g root -m 0644 install/files/authorized "$CONF_DIR/authorized"
    say "wrote an empty authorization list, $CONF_DIR/authorized"
  fi
  say "installed mailsubmit in $prefix (helper $prefix/bin/mailsubmit, set-gid $MAILSUBMIT_GROUP)"
}

# A two-line launcher: the bundles need only Node.js.
write_launcher() {
  local path=$1 target=$2 node
  node=$(command -v node)
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$node" "$target" >"$path.tmp"
  chmod 0755 "$path.tmp"
  mv -f "$path.tmp" "$path"
}
