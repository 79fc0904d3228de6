# Shared by install.sh and uninstall.sh: messages, the options both take, and
# the install layout derived from them. Both scripts take the same options so
# that an administrator can undo a staged install with the same command line.
say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*"; }
warn() { printf '%s: warning: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

# The defaults: Debian's layout for a locally built program.
prefix=/usr/local
sysconfdir=/etc/mailsubmit
rundir=/run/mailsubmit
logdir=/var/log/mailsubmit
spooldir=/var/lib/mailsubmit/spool
queuedir=/var/lib/mailsubmit/queue
postfix_config=/etc/postfix
listener=private
logrotate_dir=/etc/logrotate.d
daemon_user=mailsubmit
daemon_group=mailsubmit
use_systemd=1
install_mode=setgid
# Install-only switches (uninstall.sh accepts and ignores them).
with_postfix=1
start_daemon=1
first_message=1
build=1
keep_config=0
# Which layout options were given on the command line (uninstall.sh checks
# them against the install record).
given_options=()

OPTIONS_HELP='Layout (install.sh and uninstall.sh take the same ones):
  --prefix DIR          programs in DIR/bin, DIR/sbin, DIR/lib/mailsubmit (/usr/local)
  --sysconfdir DIR      mailsubmit.conf, authorized, install.state (/etc/mailsubmit)
  --rundir DIR          the socket and the pid file (/run/mailsubmit)
  --logdir DIR          the log of a daemon run without systemd (/var/log/mailsubmit)
  --spooldir DIR        the own directory of the daemon, spool for held qmail-queue messages (/var/lib/mailsubmit/spool)
  --queuedir DIR        the local queue: messages the MTA could not take yet (/var/lib/mailsubmit/queue)
  --postfix-config DIR  the Postfix whose master.cf gets the listener (/etc/postfix)
  --listener private|127.0.0.1:PORT
                        the re-injection listener and the daemon target: "private"
                        (default), a Unix socket only the daemon user can reach,
                        in the Postfix queue directory; or a loopback TCP port,
                        which every local user can reach (docs/postfix.md)
  --logrotate-dir DIR   where the logrotate file for that log goes (/etc/logrotate.d)
  --user NAME           the account the daemon runs as (mailsubmit)
  --group NAME          the group of the socket and the set-gid helper (mailsubmit)
  --no-systemd          run the daemon in the background with a pid file, even under systemd
  --no-setgid           no set-gid helper: an open socket; the daemon checks every caller'

# parse_options "$@": fills the variables above; dies on a bad option.
parse_options() {
  local name value
  while [ $# -gt 0 ]; do
    name=$1 value=
    case "$name" in
      --*=*) value=${name#*=}; name=${name%%=*} ;;
    esac
    case "$name" in
      --prefix|--sysconfdir|--rundir|--logdir|--spooldir|--queuedir|--postfix-config|--listener|--logrotate-dir|--user|--group)
        if [ -z "$value" ]; then
          [ $# -ge 2 ] || die "$name needs a value (see --help)"
          value=$2
          shift
        fi
        set_option "$name" "$value"
        given_options+=("$name")
        ;;
      --no-systemd) use_systemd=0 ;;
      --no-setgid) install_mode=open ;;
      --no-postfix) with_postfix=0 ;;
      --no-start) start_daemon=0; first_message=0 ;;
      --no-first-message) first_message=0 ;;
      --no-build) build=0 ;;
      --keep-config) keep_config=1 ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option: $name (see --help)" ;;
    esac
    shift
  done
  derive_layout
}

set_option() {
  local name=$1 value=$2
  case "$name" in
    --prefix) prefix=$(checked_path "$name" "$value") ;;
    --sysconfdir) sysconfdir=$(checked_path "$name" "$value") ;;
    --rundir) rundir=$(checked_path "$name" "$value") ;;
    --logdir) logdir=$(checked_path "$name" "$value") ;;
    --spooldir) spooldir=$(checked_path "$name" "$value") ;;
    --queuedir) queuedir=$(checked_path "$name" "$value") ;;
    --postfix-config) postfix_config=$(checked_path "$name" "$value") ;;
    --logrotate-dir) logrotate_dir=$(checked_path "$name" "$value") ;;
    --listener)
      if [ "$value" = private ]; then listener=private; return; fi
      # Loopback only: anything that can connect to the listener can relay (docs/postfix.md).
      if ! [[ $value =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}:([0-9]{1,5})$ ]] \
        || [ "${BASH_REMATCH[1]}" -lt 1 ] || [ "${BASH_REMATCH[1]}" -gt 65535 ]; then
        die "--listener: expected private or 127.0.0.1:PORT (loopback only), got '$value'"
      fi
      listener=$value ;;
    --user|--group)
      [[ $value =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "$name: '$value' is not a user or group name"
      # The user's name with -mta appended names a group (derive_door).
      [ "$name" = --group ] || [ "${#value}" -le 28 ] || die "--user: '$value' is longer than 28 characters"
      if [ "$name" = --user ]; then daemon_user=$value; else daemon_group=$value; fi ;;
  esac
}

# The paths go into a TOML file, a C string, a systemd unit and sed scripts:
# keep them to characters that mean nothing special in any of them.
checked_path() {
  local name=$1 value=$2
  [[ $value =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "$name: expected an absolute path of letters, digits and ._/+-, got '$value'"
  while [ "${#value}" -gt 1 ] && [ "${value%/}" != "$value" ]; do value=${value%/}; done
  printf '%s\n' "$value"
}

derive_layout() {
  LIB_DIR=$prefix/lib/mailsubmit
  HELPER=$prefix/bin/mailsubmit
  DAEMON=$prefix/sbin/mailsubmitd
  CTL=$prefix/sbin/mailsubmitctl
  CONF_FILE=$sysconfdir/mailsubmit.conf
  AUTH_LIST=$sysconfdir/authorized
  STATE_FILE=$sysconfdir/install.state
  SOCKET_PATH=$rundir/mailsubmit.sock
  PID_FILE=$rundir/mailsubmitd.pid
  LOG_FILE=$logdir/mailsubmitd.log
  MASTER_CF=$postfix_config/master.cf
  UNIT_PATH=/etc/systemd/system/mailsubmitd.service
  SOCKET_UNIT_PATH=/etc/systemd/system/mailsubmitd.socket
  # Set-gid: only the daemon's group (the helper) may reach the socket, or
  # even look inside its directory; open: everyone, and the daemon decides.
  SOCKET_MODE=0660
  RUNDIR_MODE=0750
  if [ "$install_mode" = open ]; then SOCKET_MODE=0666 RUNDIR_MODE=0755; fi
  LOGROTATE_FILE=$logrotate_dir/mailsubmitd
  derive_door
}

# The daemon's way into Postfix (docs/postfix.md). "private": a Unix socket
# in a directory of Postfix's queue directory, postfix:MTA_GROUP 0710, where
# MTA_GROUP has the daemon's user as its only member (not the helper's
# group). Postfix names a unix service relative to public/ (private column
# n), so the service is "../NAME/smtpd"; its smtpd processes take a lock
# file under pid/unix.<service>, hence the directory pid/unix.../NAME.
derive_door() {
  MTA_GROUP=$daemon_user-mta
  DOOR_NAME=mailsubmit
  [ "$daemon_user" = mailsubmit ] || DOOR_NAME=mailsubmit-$daemon_user
  local queue
  queue=$(postconf -c "$postfix_config" -h queue_directory 2>/dev/null || true)
  PF_QUEUE_DIR=${queue:-/var/spool/postfix}
  DOOR_DIR=$PF_QUEUE_DIR/$DOOR_NAME
  DOOR_SOCKET=$DOOR_DIR/smtpd
  DOOR_LOCK_DIR=$PF_QUEUE_DIR/pid/unix.../$DOOR_NAME
  if [ "$listener" = private ]; then
    LISTENER_SERVICE=../$DOOR_NAME/smtpd
    LISTENER_TYPE=unix
    DOWNSTREAM_TARGET=unix:$DOOR_SOCKET
  else
    LISTENER_SERVICE=$listener
    LISTENER_TYPE=inet
    DOWNSTREAM_TARGET=$listener
  fi
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  printf '\n%s\n' "$OPTIONS_HELP"
}

# account_command CMD ARGS...: useradd, userdel, groupadd and groupdel give up
# at once ("cannot lock /etc/passwd; try again later") while another program
# changes the account files; try again for up to ten seconds.
account_command() {
  local output _
  for _ in $(seq 1 100); do
    if output=$("$@" 2>&1); then
      # uninstall.sh's own doing (see there), not news for the administrator.
      output=$(grep -v 'not removed because it is not the primary group' <<<"$output" || true)
      [ -z "$output" ] || printf '%s\n' "$output" >&2
      return 0
    fi
    case "$output" in
      *"cannot lock"* | *"try again later"*) sleep 0.1 ;;
      *) break ;;
    esac
  done
  printf '%s\n' "$output" >&2
  return 1
}

# Is systemd the init system here (not so in containers and CI)?
systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# Postfix's commands, always for the configuration directory chosen.
pf_postfix() { postfix -c "$postfix_config" "$@"; }
pf_postconf() { postconf -c "$postfix_config" "$@"; }
