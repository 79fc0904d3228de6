#!/usr/bin/env bash
# install.sh: build mailsubmit, install it, wire it to Postfix, start it, and
# send a first message through it. Run as root from the source tree.
#
#   ./install/install.sh [--prefix DIR] [--no-postfix] [--no-start] [--no-first-message]
#
# Idempotent: run it again after an update. Each step says what it did or
# that there was nothing to do:
#   1. platform: Node.js >= 20.11; Postfix from Debian when absent (local only)
#   2. build: npm ci, then the bundles, the socket addon and the set-gid helper
#   3. the mailsubmit user and group
#   4. files: helper 2755 root:mailsubmit, daemon, mailsubmitctl, /etc/mailsubmit
#   5. Postfix: the re-injection listener in master.cf (with a backup), checked, reloaded
#   6. the daemon: systemd where it runs, else a background process with a pid file
#   7. the invoking user authorized, and a first message submitted end to end
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# shellcheck source=install/lib/common.sh
. install/lib/common.sh

prefix=/usr/local
with_postfix=1
start_daemon=1
first_message=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --no-postfix) with_postfix=0; shift ;;
    --no-start) start_daemon=0; first_message=0; shift ;;
    --no-first-message) first_message=0; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "run as root: it creates a user, installs a set-gid program and changes Postfix"

. install/lib/platform.sh
. install/lib/build.sh
. install/lib/files.sh
. install/lib/man.sh
. install/lib/postfix.sh
. install/lib/daemon.sh

check_platform
[ "$with_postfix" -eq 1 ] && ensure_postfix
build_everything
ensure_account
install_files "$prefix"
install_man_pages "$prefix"
if [ "$with_postfix" -eq 1 ]; then
  add_reinjection_listener
  ensure_postfix_log
fi
if [ "$start_daemon" -eq 1 ]; then
  start_daemon "$prefix"
fi
if [ "$first_message" -eq 1 ]; then
  authorize_invoking_user "$prefix"
  submit_first_message "$prefix"
fi
say "done"
