#!/usr/bin/env bash
# mailsubmit-postfix-listener: Postfix's re-injection listener for the
# mailsubmit of the Debian package, which installs this script as
# mailsubmit-postfix-listener in /usr/sbin (install.sh adds and uninstall.sh
# removes the listener itself). The same block, from the same files, as
# install.sh adds by default (docs/postfix.md): a Unix socket in Postfix's
# queue directory that only the daemon's user can reach.
#
#   mailsubmit-postfix-listener add|remove|status [--postfix-config DIR]
#
# add: puts the listener into master.cf (after a backup), runs postfix check
# and reloads Postfix; says so and does nothing when it is there already.
# The package's postinst runs it when Postfix is installed and
# mailsubmit.conf's downstream is this listener.
# remove: takes out what add made, leaving master.cf byte for byte as it was;
# the package runs it when it is removed.
# status: exit 0 when master.cf has the listener, 1 when it has not.
# What add made is listed in /var/lib/mailsubmit/postfix-listener.state.
set -euo pipefail

# The libraries and files of install.sh, beside this script: the source
# tree's install/, or /usr/share/mailsubmit/install in the package.
here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$here"
# shellcheck source=install/lib/common.sh
. install/lib/common.sh

command=${1:-}
case "$command" in
  add | remove | status) shift ;;
  -h | --help) usage; exit 0 ;;
  *) die "expected add, remove or status (see --help)" ;;
esac
parse_options "$@"
[ "$(id -u)" -eq 0 ] || [ "$command" = status ] || die "run as root: it changes Postfix's master.cf"
. install/lib/state.sh
. install/lib/postfix.sh
STATE_FILE=${MAILSUBMIT_LISTENER_STATE:-/var/lib/mailsubmit/postfix-listener.state}

if [ "$command" != remove ] && ! { [ -f "$MASTER_CF" ] && command -v postconf >/dev/null; }; then
  die "no Postfix here ($MASTER_CF): install postfix, then run '$(basename "$0") add'"
fi

case "$command" in
  status)
    if has_listener_block "$MASTER_CF" "$LISTENER_SERVICE"; then
      say "$MASTER_CF has the re-injection listener $LISTENER_SERVICE"
    else
      say "$MASTER_CF has no re-injection listener of mailsubmit"
      exit 1
    fi
    ;;
  add)
    getent group "$MTA_GROUP" >/dev/null || die "group $MTA_GROUP is missing: reinstall the mailsubmit package"
    install -d -m 0755 "$(dirname "$STATE_FILE")"
    [ -f "$STATE_FILE" ] || printf '# What mailsubmit-postfix-listener added, for its remove.\n' >"$STATE_FILE"
    add_reinjection_listener
    ensure_postfix_log
    ;;
  remove)
    [ -f "$STATE_FILE" ] || { say "nothing to remove: no record at $STATE_FILE"; exit 0; }
    mapfile -t listeners < <(recorded listener_added)
    mapfile -t maillog < <(recorded maillog_file)
    mapfile -t files < <(recorded file)
    mapfile -t dirs < <(recorded dir)
    undo_postfix_changes
    rm -f "${files[@]}"
    for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
      [ -d "${dirs[$i]}" ] && rmdir --ignore-fail-on-non-empty "${dirs[$i]}"
    done
    rm -f "$STATE_FILE"
    ;;
esac
