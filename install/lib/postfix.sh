# Step 5: Postfix's re-injection listener (docs/postfix.md) in the master.cf
# of $postfix_config, on $listener. The block sits between two marker lines
# and is taken out again line for line, so that uninstall leaves master.cf
# byte for byte as it was. Several blocks for different listeners may stand
# side by side (staged installs against one Postfix).

BLOCK_BEGIN="# mailsubmit: Postfix's re-injection listener (see docs/postfix.md)."
BLOCK_END='# mailsubmit: end'

# The shipped block, on this install's listener.
render_listener_block() {
  sed "s|^127\\.0\\.0\\.1:10026 |$1 |" install/files/postfix-master.cf
}

# Does master.cf have our block for this listener?
has_listener_block() {
  awk -v begin="$BLOCK_BEGIN" -v end="$BLOCK_END" -v addr="$2" '
    $0 == begin { inside = 1; next }
    $0 == end { inside = 0; next }
    inside && $1 == addr { found = 1 }
    END { exit found ? 0 : 1 }' "$1"
}

add_reinjection_listener() {
  if has_listener_block "$MASTER_CF" "$listener"; then
    # Between our markers, so an install.sh put it there (perhaps an older
    # one that kept no record): uninstall.sh takes it out again.
    record listener_added "$listener"
    [ -f "$MASTER_CF.mailsubmit-backup" ] && record file "$MASTER_CF.mailsubmit-backup"
    say "Postfix ($MASTER_CF) already has the re-injection listener $listener"
    return
  fi
  if [ -n "$(pf_postconf -M "$listener/inet" 2>/dev/null)" ]; then
    die "$MASTER_CF already has a service on $listener: choose another port with --listener 127.0.0.1:PORT"
  fi
  cp -p "$MASTER_CF" "$MASTER_CF.mailsubmit-backup"
  record file "$MASTER_CF.mailsubmit-backup"
  { printf '\n'; render_listener_block "$listener"; } >>"$MASTER_CF"
  record listener_added "$listener"
  if ! pf_postfix check; then
    cp -p "$MASTER_CF.mailsubmit-backup" "$MASTER_CF"
    die "postfix check failed with the listener added; $MASTER_CF restored"
  fi
  pf_postfix reload >/dev/null 2>&1 || true
  wait_for_listener
  say "added the re-injection listener $listener to $MASTER_CF (backup: $MASTER_CF.mailsubmit-backup)"
}

# After a reload Postfix's master opens the new listener asynchronously.
# Looked for in /proc/net/tcp rather than by connecting, which smtpd would log.
wait_for_listener() {
  local port=${listener##*:} hex _
  hex=$(printf ':%04X' "$port")
  for _ in $(seq 1 50); do
    awk -v port="$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == port { found = 1 } END { exit found ? 0 : 1 }' \
      /proc/net/tcp && return 0
    sleep 0.1
  done
  warn "Postfix does not listen on $listener yet: see its log"
}

# remove_reinjection_listener MASTER_CF ADDR: takes our block for ADDR out,
# with the one empty line add_reinjection_listener wrote before it.
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
