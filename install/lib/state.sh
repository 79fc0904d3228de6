# The install record, $sysconfdir/install.state: the layout install.sh used
# and everything it created (the account, directories, files, the Postfix
# listener, its private directory and group, the maillog_file setting), one "key=value" a line. uninstall.sh
# removes exactly what is recorded, so it never deletes a user, a group, a
# directory or a setting that was there before the install. Entries are
# only ever added: a second install.sh run keeps what the first one created.
#
# The record is read line by line, never sourced: it is data, not code.

STATE_LAYOUT_KEYS=(prefix sysconfdir rundir logdir spooldir queuedir postfix_config listener logrotate_dir daemon_user daemon_group install_mode)

# record KEY VALUE: adds the line once.
record() {
  local line="$1=$2"
  [ -f "$STATE_FILE" ] || die "internal: no install record at $STATE_FILE yet"
  grep -qxF -- "$line" "$STATE_FILE" || printf '%s\n' "$line" >>"$STATE_FILE"
}

# Writes the record's header and layout. Layout lines are rewritten on
# every run (the last install's layout counts); what was created stays.
open_record() {
  local key created=
  if [ -f "$STATE_FILE" ]; then
    created=$(awk -F= -v keys="${STATE_LAYOUT_KEYS[*]}" \
      'BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) layout[k[i]] = 1 } /^#/ { next } !($1 in layout)' "$STATE_FILE")
  fi
  {
    printf '# What install.sh created here, for uninstall.sh (it removes exactly this).\n'
    for key in "${STATE_LAYOUT_KEYS[@]}"; do printf '%s=%s\n' "$key" "${!key}"; done
    [ -n "$created" ] && printf '%s\n' "$created"
  } >"$STATE_FILE.tmp"
  chmod 0644 "$STATE_FILE.tmp"
  mv -f "$STATE_FILE.tmp" "$STATE_FILE"
}

# recorded KEY: every value recorded under KEY, one a line, in order.
recorded() {
  [ -f "$STATE_FILE" ] || return 0
  sed -n "s/^$1=//p" "$STATE_FILE"
}

# make_dir MODE OWNER GROUP DIR: install -d, recording each directory that
# did not exist yet (parents first), so that uninstall removes only those.
make_dir() {
  local mode=$1 owner=$2 group=$3 dir=$4 missing=() parent
  parent=$dir
  while [ ! -e "$parent" ]; do
    missing=("$parent" "${missing[@]}")
    parent=$(dirname "$parent")
  done
  local new
  for new in "${missing[@]}"; do
    install -d -m 0755 "$new"
    record dir "$new"
  done
  install -d -o "$owner" -g "$group" -m "$mode" "$dir"
}

# The sysconfdir holds the record itself, so it is made before anything else
# and its missing parents are remembered until the record exists.
open_sysconfdir() {
  local missing=() parent=$sysconfdir new
  while [ ! -e "$parent" ]; do
    missing=("$parent" "${missing[@]}")
    parent=$(dirname "$parent")
  done
  install -d -o root -g root -m 0755 "$sysconfdir"
  open_record
  for new in "${missing[@]}"; do record dir "$new"; done
  # An older install.sh left this marker instead of a record.
  if [ -f "$sysconfdir/.set-postfix-maillog" ]; then
    record maillog_file /var/log/postfix.log
    rm -f "$sysconfdir/.set-postfix-maillog"
  fi
}
