# Step 1: what the build and the tests need from the system.

check_platform() {
  command -v node >/dev/null || die "Node.js 20.11 or later is required (apt-get install nodejs)"
  command -v npm >/dev/null || die "npm is required (apt-get install npm)"
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=11)?0:1)' \
    || die "Node.js 20.11 or later is required, found $(node --version)"
  # cc and make build the helper, python3 runs node-gyp (and the tests' direct
  # socket client, as /usr/bin/python3), setpriv starts the daemon as its user,
  # man and groff read and check the man pages.
  local missing=()
  for tool in cc make setpriv man groff; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ -x /usr/bin/python3 ] || missing+=(/usr/bin/python3)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing build tools (${missing[*]})"
    apt_install build-essential python3 util-linux man-db groff-base
  fi
}

apt_install() {
  if [ -z "${apt_updated:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Postfix from Debian, as a local-only mail system when it is not there yet;
# then the instance at $postfix_config must run (a private one is started
# with postfix -c, the system's through systemd where it runs).
ensure_postfix() {
  if ! command -v postfix >/dev/null; then
    say "installing Postfix (local only)"
    debconf-set-selections <<<"postfix postfix/main_mailer_type select Local only"
    debconf-set-selections <<<"postfix postfix/mailname string $(hostname -f 2>/dev/null || hostname)"
    apt_install postfix
  fi
  [ -f "$MASTER_CF" ] || die "$postfix_config has no master.cf: is --postfix-config a Postfix configuration directory?"
  pf_postfix status >/dev/null 2>&1 && return 0
  say "starting Postfix ($postfix_config)"
  if [ "$postfix_config" = /etc/postfix ] && systemd_running; then
    systemctl start postfix
  else
    pf_postfix start >/dev/null 2>&1 || true
  fi
  pf_postfix status >/dev/null 2>&1 || die "Postfix ($postfix_config) does not run: see 'postfix -c $postfix_config check' and its log"
}
