#!/usr/bin/env bash
# render-files.sh DIR: the files install.sh writes, for the package's layout
# (install.sh's defaults with the programs under /usr), rendered by
# install.sh's own functions from install/files into DIR: mailsubmit.conf,
# authorized, the systemd units and the launchers of mailsubmitd and
# mailsubmitctl. Run from the top of the source tree (debian/rules does).
set -euo pipefail

out=$1
mkdir -p "$out"
# shellcheck source=install/lib/common.sh
. install/lib/common.sh
. install/lib/files.sh
. install/lib/daemon.sh
# A Postfix configuration directory that does not exist: the listener's
# socket then takes Postfix's default queue directory, not the build machine's.
parse_options --prefix /usr --postfix-config /nonexistent/postfix

INSTALLER='the Debian package' TO_MOVE_THEM='by building the package again (debian/rules)' \
  LISTENER_STEP=mailsubmit-postfix-listener render_config >"$out/mailsubmit.conf"
sed "s|@AUTH_LIST@|$AUTH_LIST|g" install/files/authorized >"$out/authorized"

# The unit's stop timeout follows the packaged configuration, not a
# configuration installed on the build machine.
eval "installed_stop_grace() $(declare -f stop_grace | tail -n +2)"
stop_grace() { local CONF_FILE=$out/mailsubmit.conf; installed_stop_grace; }
render_unit >"$out/mailsubmitd.service"
render_unit install/files/mailsubmitd.socket >"$out/mailsubmitd.socket"

# Launchers as install.sh writes them, with Debian's node.
printf '#!/bin/sh\nexec /usr/bin/node %s "$@"\n' "$LIB_DIR/mailsubmitd.mjs" >"$out/mailsubmitd"
printf '#!/bin/sh\nexec /usr/bin/node %s "$@"\n' "$LIB_DIR/mailsubmitctl.cjs" >"$out/mailsubmitctl"
chmod 0755 "$out/mailsubmitd" "$out/mailsubmitctl"
