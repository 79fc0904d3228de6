# Shared by the install scripts: messages and the install layout.
say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*"; }
die() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

MAILSUBMIT_USER=mailsubmit
MAILSUBMIT_GROUP=mailsubmit
CONF_DIR=/etc/mailsubmit
RUN_DIR=/run/mailsubmit
SOCKET_PATH=$RUN_DIR/mailsubmit.sock
PID_FILE=$RUN_DIR/mailsubmitd.pid
LOG_FILE=/var/log/mailsubmit/mailsubmitd.log
UNIT_PATH=/etc/systemd/system/mailsubmitd.service

# Is systemd the init system here (not so in containers and CI)?
systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }
