#!/usr/bin/env bash
# install.sh: build mailsubmit, install it, wire it to Postfix, start it, and
# send a first message through it. Run as root from the source tree.
#
#   ./install/install.sh [LAYOUT OPTIONS] [--no-postfix] [--no-start] [--no-first-message] [--no-build]
#
# Idempotent: run it again after an update. Each step says what it did or
# that there was nothing to do:
#   1. platform: Node.js >= 20.11; Postfix from Debian when absent (local only)
#   2. build: npm ci, then the bundles, the socket addon and the helper
#      (--no-build: take what 'npm run build' left in the tree)
#   3. the daemon's user and group
#   4. files: the helper, compiled with this install's paths, 2755 root:GROUP
#      (0755 with --no-setgid), the daemon, mailsubmitctl, SYSCONFDIR
#   5. Postfix: the re-injection listener in master.cf (with a backup), checked,
#      reloaded: a Unix socket only the daemon's user can reach (--listener
#      127.0.0.1:PORT: a loopback port, as older versions had; switching
#      takes the old listener out)
#   6. the daemon: systemd where it runs, else a background process with a pid file
#   7. the invoking user authorized, and a first message submitted end to end
# Everything created is listed in SYSCONFDIR/install.state; uninstall.sh,
# given the same options, removes exactly that.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# shellcheck source=install/lib/common.sh
. install/lib/common.sh
parse_options "$@"
[ "$(id -u)" -eq 0 ] || die "run as root: it creates a user, installs a set-gid program and changes Postfix"

. install/lib/state.sh
. install/lib/platform.sh
. install/lib/build.sh
. install/lib/files.sh
. install/lib/man.sh
. install/lib/postfix.sh
. install/lib/daemon.sh

check_platform
[ "$with_postfix" -eq 1 ] && ensure_postfix
build_everything
open_sysconfdir
ensure_account
install_files
install_man_pages_recorded
if [ "$with_postfix" -eq 1 ]; then
  add_reinjection_listener
  ensure_postfix_log
fi
if [ "$start_daemon" -eq 1 ]; then
  start_the_daemon
fi
if [ "$first_message" -eq 1 ]; then
  authorize_invoking_user
  submit_first_message
fi
say "done"
