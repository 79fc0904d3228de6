#!/usr/bin/env bash
# uninstall.sh: undo install.sh. Stops the daemon, removes its files, the
# re-injection listener and the mailsubmit account, and leaves Postfix as it
# was before the install. Run as root.
#
#   ./install/uninstall.sh [--prefix DIR] [--keep-config]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. install/lib/common.sh
. install/lib/postfix.sh
. install/lib/daemon.sh

prefix=/usr/local
keep_config=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --keep-config) keep_config=1; shift ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "run as root"

if systemd_running && [ -f "$UNIT_PATH" ]; then
  systemctl disable --now mailsubmitd.service >/dev/null 2>&1 || true
  rm -f "$UNIT_PATH"
  systemctl daemon-reload
  say "stopped and removed the systemd unit"
fi
stop_background_daemon
rm -rf "$RUN_DIR" "$(dirname "$LOG_FILE")"

rm -f "$prefix/bin/mailsubmit" "$prefix/bin/mailsubmit-sendmail" "$prefix/bin/mailsubmit-qmail-queue" \
  "$prefix/sbin/mailsubmitd" "$prefix/sbin/mailsubmitctl"
rm -rf "$prefix/lib/mailsubmit"
for page in man1/mailsubmit.1 man8/mailsubmitd.8 man8/mailsubmitctl.8 man5/mailsubmit.conf.5; do
  rm -f "$prefix/share/man/$page"
done
say "removed the programs from $prefix"

if command -v postfix >/dev/null; then
  remove_reinjection_listener
  if [ -f "$CONF_DIR/.set-postfix-maillog" ]; then
    postconf -X maillog_file
    postfix reload >/dev/null 2>&1 || true
    say "Postfix logs through syslog again (maillog_file removed)"
  fi
fi

if [ "$keep_config" -eq 1 ]; then
  rm -f "$CONF_DIR/.set-postfix-maillog"
  say "kept $CONF_DIR"
else
  rm -rf "$CONF_DIR"
  say "removed $CONF_DIR"
fi

if getent passwd "$MAILSUBMIT_USER" >/dev/null; then userdel "$MAILSUBMIT_USER"; say "removed user $MAILSUBMIT_USER"; fi
if getent group "$MAILSUBMIT_GROUP" >/dev/null; then groupdel "$MAILSUBMIT_GROUP"; say "removed group $MAILSUBMIT_GROUP"; fi
say "done"
