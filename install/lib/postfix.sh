# Step 5: Postfix's re-injection listener (docs/postfix.md) in the master.cf
# of $postfix_config: by default a Unix socket in a directory only the
# daemon's user can enter ($DOOR_DIR), or, with --listener 127.0.0.1:PORT, a
# loopback port. The block sits between two marker lines and is taken out
# again line for line, so that uninstall leaves master.cf byte for byte as
# it was. Several blocks for different listeners may stand side by side
# (staged installs against one Postfix). A block an earlier install of this
# record added for another listener (the TCP port of older versions) is
# taken out when the listener changes.

BLOCK_BEGIN="# mailsubmit: Postfix's re-injection listener (see docs/postfix.md)."
BLOCK_END='# mailsubmit: end'

# render_listener_block SERVICE TYPE: the shipped block, on this listener,
# with a cleanup service of its own (mailsubmit-cleanup, or
# mailsubmit-cleanup-PORT for a loopback port, so that blocks for several
# listeners can stand side by side).
render_listener_block() {
  sed -e "s|^@SERVICE@ @TYPE@ |$1 $2 |" -e "s|@CLEANUP@|$(cleanup_service "$1")|g" install/files/postfix-master.cf
}

# cleanup_service SERVICE: the name of the listener's cleanup service.
cleanup_service() {
  case $1 in
    *:*) printf 'mailsubmit-cleanup-%s\n' "${1##*:}" ;;
    *) printf 'mailsubmit-cleanup\n' ;;
  esac
}

# The socket and lock file Postfix's master makes for the listener's cleanup
# service (private column n: in public/), left behind when the block goes.
record_cleanup_service_files() {
  local cleanup
  cleanup=$(cleanup_service "$LISTENER_SERVICE")
  record file "$PF_QUEUE_DIR/public/$cleanup"
  record file "$PF_QUEUE_DIR/pid/unix.$cleanup"
}

# listener_block MASTER_CF SERVICE: our block for SERVICE as it stands, markers included.
listener_block() {
  awk -v begin="$BLOCK_BEGIN" -v end="$BLOCK_END" -v addr="$2" '
    $0 == begin { n = 0; ours = 0; inside = 1 }
    inside { line[++n] = $0; split($0, field, /[ \t]+/); if ($0 !~ /^#/ && field[1] == addr) ours = 1 }
    $0 == end && inside { if (ours) { for (i = 1; i <= n; i++) print line[i]; exit } inside = 0 }' "$1"
}

# Does master.cf have our block for this service name?
has_listener_block() {
  awk -v begin="$BLOCK_BEGIN" -v end="$BLOCK_END" -v addr="$2" '
    $0 == begin { inside = 1; next }
    $0 == end { inside = 0; next }
    inside && $1 == addr { found = 1 }
    END { exit found ? 0 : 1 }' "$1"
}

add_reinjection_listener() {
  local old changed=0
  [ "$LISTENER_TYPE" = unix ] && make_private_door
  # Before the backup: it is then master.cf as it was before any install.
  for old in $(recorded listener_added); do
    [ "$old" = "$LISTENER_SERVICE" ] && continue
    has_listener_block "$MASTER_CF" "$old" || continue
    remove_reinjection_listener "$MASTER_CF" "$old"
    changed=1
    say "removed the re-injection listener $old from $MASTER_CF (this install now uses $LISTENER_SERVICE)"
  done
  if has_listener_block "$MASTER_CF" "$LISTENER_SERVICE"; then
    # Between our markers, so an install.sh put it there (perhaps an older
    # one that kept no record): uninstall.sh takes it out again.
    record listener_added "$LISTENER_SERVICE"
    record_cleanup_service_files
    [ -f "$MASTER_CF.mailsubmit-backup" ] && record file "$MASTER_CF.mailsubmit-backup"
    if [ "$(listener_block "$MASTER_CF" "$LISTENER_SERVICE")" != "$(render_listener_block "$LISTENER_SERVICE" "$LISTENER_TYPE")" ]; then
      update_reinjection_listener
      return
    fi
    [ "$changed" -eq 1 ] && pf_postfix reload >/dev/null 2>&1
    say "Postfix ($MASTER_CF) already has the re-injection listener $LISTENER_SERVICE"
    return
  fi
  if [ -n "$(pf_postconf -M "$LISTENER_SERVICE/$LISTENER_TYPE" 2>/dev/null)" ]; then
    die "$MASTER_CF already has a service $LISTENER_SERVICE: choose another listener with --listener"
  fi
  cp -p "$MASTER_CF" "$MASTER_CF.mailsubmit-backup"
  record file "$MASTER_CF.mailsubmit-backup"
  { printf '\n'; render_listener_block "$LISTENER_SERVICE" "$LISTENER_TYPE"; } >>"$MASTER_CF"
  record listener_added "$LISTENER_SERVICE"
  record_cleanup_service_files
  if ! pf_postfix check; then
    cp -p "$MASTER_CF.mailsubmit-backup" "$MASTER_CF"
    die "postfix check failed with the listener added; $MASTER_CF restored"
  fi
  pf_postfix reload >/dev/null 2>&1 || true
  wait_for_listener
  say "added the re-injection listener $LISTENER_SERVICE to $MASTER_CF (backup: $MASTER_CF.mailsubmit-backup)"
}

# An earlier release's block for this listener (other -o options, such as
# the smtpd_recipient_limit of this one): replaced by this release's, at the
# end of master.cf, where a first install puts it. The backup of master.cf
# as it was before any install stays as it is.
update_reinjection_listener() {
  local before="$MASTER_CF.mailsubmit-update"
  cp -p "$MASTER_CF" "$before"
  remove_reinjection_listener "$MASTER_CF" "$LISTENER_SERVICE"
  { printf '\n'; render_listener_block "$LISTENER_SERVICE" "$LISTENER_TYPE"; } >>"$MASTER_CF"
  if ! pf_postfix check; then
    mv -f "$before" "$MASTER_CF"
    die "postfix check failed with the listener updated; $MASTER_CF restored"
  fi
  rm -f "$before"
  pf_postfix reload >/dev/null 2>&1 || true
  wait_for_listener
  say "updated the re-injection listener $LISTENER_SERVICE in $MASTER_CF to this release's settings"
}

# The private listener's directory: postfix (which binds the socket there,
# as its mail_owner) may write it, the group $MTA_GROUP (the daemon's user
# alone) may only pass through, nobody else may even look. Neither the
# daemon's user nor the helper's group can write it, so no one but Postfix
# and root decides what the name smtpd means: Postfix's master chmods the
# socket by name after binding it. The socket and smtpd's lock file are
# recorded so that uninstall removes them with the directories.
make_private_door() {
  local owner
  owner=$(pf_postconf -h mail_owner)
  [ -d "$PF_QUEUE_DIR" ] || die "Postfix ($postfix_config) has no queue directory $PF_QUEUE_DIR"
  if [ -e "$DOOR_DIR" ] && ! recorded dir | grep -qxF "$DOOR_DIR"; then
    [ -d "$DOOR_DIR" ] && [ ! -L "$DOOR_DIR" ] || die "$DOOR_DIR is there and is not a directory install.sh made"
  fi
  make_dir 0710 "$owner" "$MTA_GROUP" "$DOOR_DIR"
  record dir "$DOOR_DIR"
  record file "$DOOR_SOCKET"
  make_dir 0755 root root "$DOOR_LOCK_DIR"
  record dir "$DOOR_LOCK_DIR"
  record file "$DOOR_LOCK_DIR/smtpd"
}

# After a reload Postfix's master opens the new listener asynchronously.
# Looked for without connecting, which smtpd would log: the socket file, or
# the port in /proc/net/tcp.
wait_for_listener() {
  local port=${listener##*:} hex _
  hex=$(printf ':%04X' "${port//[^0-9]/0}")
  for _ in $(seq 1 50); do
    if [ "$LISTENER_TYPE" = unix ]; then
      [ -S "$DOOR_SOCKET" ] && return 0
    else
      awk -v port="$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == port { found = 1 } END { exit found ? 0 : 1 }' \
        /proc/net/tcp && return 0
    fi
    sleep 0.1
  done
  warn "Postfix does not listen on $LISTENER_SERVICE yet: see its log"
}

# remove_reinjection_listener MASTER_CF SERVICE: takes our block for SERVICE
# out, with the one empty line add_reinjection_listener wrote before it.
remove_reinjection_listener() {
  local master=$1 addr=$2
  has_listener_block "$master" "$addr" || return 0
  awk -v begin="$BLOCK_BEGIN" -v end="$BLOCK_END" -v addr="$addr" '
    { line[NR] = $0 }
    END {
      for (i = 1; i <= NR; i++) {
        if (line[i] != begin) continue
        for (j = i + 1; j <= NR && line[j] != end; j++) continue
        if (j > NR) break
        ours = 0
        for (k = i + 1; k < j; k++) { split(line[k], field, /[ \t]+/); if (line[k] !~ /^#/ && field[1] == addr) ours = 1 }
        if (ours) { for (k = i; k <= j; k++) drop[k] = 1; if (i > 1 && line[i - 1] == "") drop[i - 1] = 1 }
        i = j
      }
      for (i = 1; i <= NR; i++) if (!(i in drop)) print line[i]
    }' "$master" >"$master.mailsubmit-tmp"
  chmod --reference="$master" "$master.mailsubmit-tmp"
  chown --reference="$master" "$master.mailsubmit-tmp"
  mv -f "$master.mailsubmit-tmp" "$master"
}

# undo_postfix_changes: takes out the listener blocks named in the array
# listeners and resets the maillog_file values in the array maillog (as an
# install record lists them), then reloads a running Postfix.
undo_postfix_changes() {
  local changed=0 addr value
  if ! [ -f "$MASTER_CF" ] || ! command -v postfix >/dev/null; then
    [ "${#listeners[@]}" -eq 0 ] || warn "no Postfix at $postfix_config: the listener ${listeners[*]} could not be removed from $MASTER_CF"
    return 0
  fi
  for addr in "${listeners[@]}"; do
    if has_listener_block "$MASTER_CF" "$addr"; then
      remove_reinjection_listener "$MASTER_CF" "$addr"
      changed=1
      say "removed the re-injection listener $addr from $MASTER_CF"
    fi
  done
  for value in "${maillog[@]}"; do
    if [ "$(pf_postconf -h maillog_file)" = "$value" ]; then
      pf_postconf -X maillog_file
      changed=1
      say "Postfix ($postfix_config) logs through syslog again (maillog_file removed)"
    fi
  done
  # master.cf is back as it was before the install: no postfix check needed.
  if [ "$changed" -eq 1 ] && pf_postfix status >/dev/null 2>&1; then
    pf_postfix reload >/dev/null 2>&1 || true
  fi
}

# Without a syslog daemon (containers, CI) Postfix's log goes nowhere; point it
# at a file so the administrator can see queue ids. Recorded for uninstall.
ensure_postfix_log() {
  [ -S /dev/log ] && return 0
  [ -n "$(pf_postconf -h maillog_file)" ] && return 0
  pf_postconf -e maillog_file=/var/log/postfix.log
  record maillog_file /var/log/postfix.log
  pf_postfix reload >/dev/null 2>&1 || true
  say "no syslog daemon runs: Postfix ($postfix_config) now logs to /var/log/postfix.log (maillog_file)"
}
