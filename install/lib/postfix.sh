# Step 5: Postfix's re-injection listener on 127.0.0.1:10026 (docs/postfix.md).

add_reinjection_listener() {
  local master=/etc/postfix/master.cf
  if grep -q '^# mailsubmit: Postfix' "$master"; then
    say "Postfix already has the re-injection listener"
    return
  fi
  cp -p "$master" "$master.mailsubmit-backup"
  { printf '\n'; cat install/files/postfix-master.cf; } >>"$master"
  if ! postfix check; then
    cp -p "$master.mailsubmit-backup" "$master"
    die "postfix check failed with the listener added; master.cf restored"
  fi
  postfix reload >/dev/null 2>&1 || true
  say "added the re-injection listener 127.0.0.1:10026 to $master (backup: $master.mailsubmit-backup)"
}

remove_reinjection_listener() {
  local master=/etc/postfix/master.cf
  grep -q '^# mailsubmit: Postfix' "$master" 2>/dev/null || return 0
  # Drop the block between the markers, and the blank line written before it.
  awk '/^# mailsubmit: Postfix/{skip=1} !skip{print} /^# mailsubmit: end/{skip=0}' "$master" \
    | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$master.tmp"
  mv -f "$master.tmp" "$master"
  postfix check && { postfix reload >/dev/null 2>&1 || true; }
  rm -f "$master.mailsubmit-backup"
  say "removed the re-injection listener from $master"
}

# Without a syslog daemon (containers, CI) Postfix's log goes nowhere; point it
# at a file so the administrator can see queue ids. Recorded for uninstall.
ensure_postfix_log() {
  [ -S /dev/log ] && return 0
  [ -n "$(postconf -h maillog_file)" ] && return 0
  postconf -e maillog_file=/var/log/postfix.log
  touch "$CONF_DIR/.set-postfix-maillog"
  postfix reload >/dev/null 2>&1 || true
  say "no syslog daemon runs: Postfix now logs to /var/log/postfix.log (maillog_file)"
}
