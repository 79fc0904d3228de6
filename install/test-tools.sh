#!/usr/bin/env bash
# test-tools.sh: the programs the test suite runs mailsubmit against, from
# Debian's archive. Run as root from the source tree, after install.sh.
#
#   ./install/test-tools.sh
#
# Installs (when missing):
#   - qpsmtpd: the SMTP front end whose queue plugins hand mail to mailsubmit;
#     its own service is left stopped and disabled: the tests start private
#     forkservers on loopback ports.
#   - swaks: the SMTP client that sends mail into qpsmtpd in the tests.
#   - perl: runs the MailScanner queue writer in contrib/mailscanner.
#   - libio-socket-ssl-perl, libnet-ssleay-perl, openssl: STARTTLS in the
#     qpsmtpd tests (qpsmtpd's tls plugin, swaks --tls, a throwaway
#     certificate); neither package above depends on them.
#   - sasl2-bin, libsasl2-modules: Cyrus SASL's saslpasswd2 and its SCRAM,
#     PLAIN and LOGIN mechanisms, for the private Postfix that requires SMTP
#     AUTH (test/support/postfix-relays.ts); its saslauthd stays off.
#   - debhelper, dpkg-dev, fakeroot, lintian: 'npm run deb' builds the Debian
#     package and test/install/deb-package.test.ts checks it with lintian.
#   - debootstrap, systemd-container, dpkg-repack: the package's install,
#     upgrade and removal tests and its boot under systemd run in a Debian
#     system booted by systemd-nspawn (test/support/debian-container.ts),
#     with this machine's Node.js package repacked into it.
#   - strace: the local queue's commit order is checked on the system calls
#     (packages/submit-daemon/test/5-transport/local-queue).
#   - dovecot-core, dovecot-lmtpd: the LMTP server of the LMTP downstream's
#     tests; its own service is left stopped and disabled: the tests start a
#     private instance (test/support/private-dovecot.ts).
#   - the programs test/compat/real-programs.test.ts runs side by side
#     through Postfix's sendmail and mailsubmit-sendmail (cron, bsd-mailx,
#     mailutils, mutt, neomutt, s-nail, nmh, the Perl mail modules, php-cli,
#     git-email, python3, ruby-mail, logwatch), and python3-flufl.bounce, the
#     bounce parser that reads the delivery status notices in the tests; without
#     recommends; refused
#     if any of them would remove a package (another MTA replacing Postfix);
#     cron's daemon and PHP's session-cleaning timer are left stopped and
#     disabled: the test runs cron in a private mount namespace.
# Makes (never installs), in /var/cache/mailsubmit/debian-system:
#   - bookworm.tar: a minimal Debian 12 made by debootstrap from Debian's
#     archive, with systemd, Postfix, what Node.js needs and a C compiler,
#     for the tests that install the package (or run install.sh) in a
#     system booted by systemd-nspawn;
#     made again when the list of its packages changes;
#   - nodejs_VERSION_ARCH.deb: this machine's Node.js package repacked
#     (dpkg-repack) for that system, whose archive has only Node.js 18.
# Downloads (never installs: it conflicts with Postfix as a package):
#   - the second MTA's .deb files into /var/cache/mailsubmit/test-debs; the
#     tests unpack them into a temporary directory and run that MTA in a
#     private mount namespace on a loopback port (test/support/second-mta.ts).
#     The shared libraries it links against are ordinary packages that do not
#     conflict with Postfix; those missing are installed.
#   - the mail corpus: four packages whose test suites ship real messages
#     (Python's email tests, flufl.bounce, enmime, SpamAssassin's samples);
#     only the samples and copyright files are unpacked, into
#     /var/cache/mailsubmit/corpus (test/compat/corpus.test.ts).
# Idempotent; each step says what it did or that there was nothing to do.
# 'npm test' runs it first (the pretest script): with everything present it
# only says so, as any user; a missing piece needs root.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# shellcheck source=install/lib/common.sh
. install/lib/common.sh
. install/lib/platform.sh

DEB_CACHE=/var/cache/mailsubmit/test-debs
# The second MTA and what it needs beyond a base system, as Debian names them.
SECOND_MTA_DEBS=(opensmtpd)
# The libraries Debian's opensmtpd (6.8) Depends on, the ones its smtpd loads;
# its other dependencies (adduser, debconf, ed, lsb-base) serve only the
# package's maintainer scripts, which an unpacked .deb never runs.
SECOND_MTA_LIBRARIES=(libc6 libcrypt1 libdb5.3 libevent-2.1-7 libpam0g libssl3 zlib1g)

install_missing_packages() {
  local missing=()
  command -v qpsmtpd-forkserver >/dev/null || missing+=(qpsmtpd)
  command -v swaks >/dev/null || missing+=(swaks)
  command -v perl >/dev/null || missing+=(perl)
  perl -MIO::Socket::SSL -e 1 2>/dev/null || missing+=(libio-socket-ssl-perl)
  perl -MNet::SSLeay -e 1 2>/dev/null || missing+=(libnet-ssleay-perl)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v dh >/dev/null || missing+=(debhelper)
  command -v dpkg-buildpackage >/dev/null || missing+=(dpkg-dev)
  command -v fakeroot >/dev/null || missing+=(fakeroot)
  command -v lintian >/dev/null || missing+=(lintian)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v dpkg-repack >/dev/null || missing+=(dpkg-repack)
  command -v strace >/dev/null || missing+=(strace)
  command -v saslpasswd2 >/dev/null || missing+=(sasl2-bin)
  sasl_mechanisms_present || missing+=(libsasl2-modules)
  [ -x /usr/sbin/dovecot ] || missing+=(dovecot-core)
  [ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
  if [ ${#missing[@]} -eq 0 ]; then
    say "qpsmtpd, swaks, perl, the TLS tools and Dovecot's LMTP server are installed"
    return 0
  fi
  say "installing ${missing[*]}"
  apt_install_services_held "${missing[@]}"
  stop_packaged_qpsmtpd
  hold_service dovecot.service /etc/init.d/dovecot
}

# Cyrus SASL's SCRAM, PLAIN and LOGIN plugins (libsasl2-modules).
sasl_mechanisms_present() {
  dpkg-query -W -f='${Status}' libsasl2-modules 2>/dev/null | grep -q 'install ok installed'
}

# apt_install_services_held PACKAGE...: policy-rc.d keeps the packages'
# services from starting during the install.
apt_install_services_held() {
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  apt_install "$@" || { [ "$created_policy" -eq 1 ] && rm -f "$policy"; die "apt-get could not install $*"; }
  [ "$created_policy" -eq 1 ] && rm -f "$policy"
  return 0
}

# Debian's qpsmtpd package runs a service of its own; the tests need none.
stop_packaged_qpsmtpd() {
  if systemd_running; then
    systemctl disable --now qpsmtpd >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/qpsmtpd ]; then
    /etc/init.d/qpsmtpd stop >/dev/null 2>&1 || true
  fi
}

download_second_mta() {
  mkdir -p "$DEB_CACHE"
  local package wanted=()
  for package in "${SECOND_MTA_DEBS[@]}"; do
    compgen -G "$DEB_CACHE/${package}_*.deb" >/dev/null || wanted+=("$package")
  done
  if [ ${#wanted[@]} -eq 0 ]; then
    say "the second MTA's packages are in $DEB_CACHE"
    return 0
  fi
  say "downloading ${wanted[*]} into $DEB_CACHE"
  [ -n "${apt_updated:-}" ] || { DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; }
  # As root into a root-owned directory: apt's _apt sandbox user could not write there.
  (cd "$DEB_CACHE" && apt-get download -qq -o APT::Sandbox::User=root "${wanted[@]}") \
    || die "apt-get could not download ${wanted[*]}"
}

install_second_mta_libraries() {
  local package wanted=()
  for package in "${SECOND_MTA_LIBRARIES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || wanted+=("$package")
  done
  if [ ${#wanted[@]} -eq 0 ]; then
    say "the second MTA's libraries are installed"
    return 0
  fi
  say "installing ${wanted[*]} for the second MTA"
  apt_install "${wanted[@]}" || die "apt-get could not install ${wanted[*]}"
}

# --- The real programs (test/compat/real-programs.test.ts) ---
# Debian packages; the test runs each program side by side through Postfix's
# sendmail and mailsubmit-sendmail (nodemailer comes from npm, a devDependency).
REAL_PROGRAM_PACKAGES=(cron bsd-mailx mailutils mutt neomutt s-nail nmh libmime-lite-perl libmailtools-perl
  libemail-sender-perl php-cli git-email python3 ruby-mail logwatch python3-flufl.bounce)

missing_real_programs() {
  local package
  for package in "${REAL_PROGRAM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$package"
  done
}

install_real_programs() {
  local missing removed
  mapfile -t missing < <(missing_real_programs)
  if [ ${#missing[@]} -eq 0 ]; then
    say "the programs run side by side with Postfix's sendmail are installed"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "some programs of the compatibility suite are missing (${missing[*]}); run as root: it installs packages from Debian's archive"
  [ -n "${apt_updated:-}" ] || { DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; }
  # Another MTA would replace Postfix (they conflict): anything apt would remove stops the install.
  removed=$(apt-get install -s --no-install-recommends "${missing[@]}" | sed -n 's/^Remv \([^ ]*\).*/\1/p' | tr '\n' ' ')
  [ -z "$removed" ] || die "installing ${missing[*]} would remove ${removed% }: not installed"
  say "installing ${missing[*]}"
  apt_install_services_held "${missing[@]}"
  local package
  for package in "${missing[@]}"; do
    case "$package" in
      cron) hold_service cron.service /etc/init.d/cron ;;
      php-cli) hold_service phpsessionclean.timer ;;
    esac
  done
}

# hold_service UNIT [INIT-SCRIPT]: stopped, and disabled for the next boot
# too (systemctl disables a unit without a running systemd); the tests start
# what they need themselves.
hold_service() {
  if systemd_running; then
    systemctl disable --now "$1" >/dev/null 2>&1 || true
  else
    if command -v systemctl >/dev/null; then systemctl disable "$1" >/dev/null 2>&1 || true; fi
    if [ -n "${2:-}" ] && [ -x "$2" ]; then "$2" stop >/dev/null 2>&1 || true; fi
  fi
}

install_real_programs
# --- end of the real programs ---

# What is missing, in one look, so that a complete machine needs no root.
nothing_missing() {
  command -v qpsmtpd-forkserver >/dev/null && command -v swaks >/dev/null && command -v perl >/dev/null &&
    perl -MIO::Socket::SSL -e 1 2>/dev/null && perl -MNet::SSLeay -e 1 2>/dev/null && command -v openssl >/dev/null &&
    command -v dh >/dev/null && command -v dpkg-buildpackage >/dev/null && command -v fakeroot >/dev/null && command -v lintian >/dev/null &&
    command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null && command -v dpkg-repack >/dev/null &&
    command -v strace >/dev/null && command -v saslpasswd2 >/dev/null && sasl_mechanisms_present && [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/lmtp ] || return 1
  local package
  for package in "${SECOND_MTA_DEBS[@]}"; do compgen -G "$DEB_CACHE/${package}_*.deb" >/dev/null || return 1; done
  for package in "${SECOND_MTA_LIBRARIES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}

# --- The Debian system the package is installed into (test/support/debian-container.ts) ---
DEBIAN_SYSTEM_DIR=/var/cache/mailsubmit/debian-system
DEBIAN_SYSTEM=$DEBIAN_SYSTEM_DIR/bookworm.tar
# systemd as PID 1 and D-Bus for systemctl; Postfix, as the package
# recommends (debconf's default: an Internet site delivering to /var/mail);
# what the Node.js package depends on; adduser for the postinst; what
# install.sh --no-build needs there (it compiles the helper, checks the man
# pages' tools).
DEBIAN_SYSTEM_PACKAGES=systemd,systemd-sysv,dbus,adduser,postfix,python3,ca-certificates,procps,gcc,make,libc6-dev,man-db,groff-base

debian_system_present() {
  [ -f "$DEBIAN_SYSTEM" ] && [ "$(cat "$DEBIAN_SYSTEM_DIR/packages" 2>/dev/null)" = "$DEBIAN_SYSTEM_PACKAGES" ]
}

make_debian_system() {
  local tree
  say "making a minimal Debian 12 with debootstrap into $DEBIAN_SYSTEM (a minute or two)"
  install -d -m 0755 "$DEBIAN_SYSTEM_DIR"
  tree=$(mktemp -d /var/tmp/mailsubmit-debootstrap.XXXXXX)
  if ! debootstrap --variant=minbase --include="$DEBIAN_SYSTEM_PACKAGES" bookworm "$tree" http://deb.debian.org/debian >"$tree.log" 2>&1; then
    tail -n 20 "$tree.log" >&2
    rm -rf "$tree" "$tree.log"
    die "debootstrap could not make the Debian system"
  fi
  rm -f "$tree/var/cache/apt/archives/"*.deb
  # The system's / is the tar's first entry: not mktemp's 0700.
  chmod 0755 "$tree"
  tar -C "$tree" --numeric-owner -cf "$DEBIAN_SYSTEM.tmp" .
  mv -f "$DEBIAN_SYSTEM.tmp" "$DEBIAN_SYSTEM"
  printf '%s\n' "$DEBIAN_SYSTEM_PACKAGES" >"$DEBIAN_SYSTEM_DIR/packages"
  rm -rf "$tree" "$tree.log"
}

# This machine's Node.js for that system, whose own archive has no Node.js 20:
# the installed nodejs package repacked with dpkg-repack, named as
# test/support/debian-container.ts looks for it (which makes it itself,
# under the same lock, where this did not).
nodejs_repack() {
  local version arch
  version=$(dpkg-query -W -f='${Version}' nodejs 2>/dev/null) || return 1
  arch=$(dpkg-query -W -f='${Architecture}' nodejs)
  printf '%s/nodejs_%s_%s.deb\n' "$DEBIAN_SYSTEM_DIR" "${version#*:}" "$arch"
}

repack_nodejs() {
  local deb work
  deb=$(nodejs_repack) || { say "Node.js is not a Debian package here: the package's tests in a booted Debian will be skipped"; return 0; }
  [ -f "$deb" ] && return 0
  command -v dpkg-repack >/dev/null || apt_install_services_held dpkg-repack
  say "repacking this machine's Node.js for the Debian system (a minute or two)"
  work=$(mktemp -d "$DEBIAN_SYSTEM_DIR/repack-XXXXXX")
  (cd "$work" && flock "$DEBIAN_SYSTEM_DIR/.repack.lock" sh -c '[ -e "$1" ] || { dpkg-repack nodejs >/dev/null 2>&1 && mv -f ./*.deb "$1"; }' sh "$deb") \
    || { rm -rf "$work"; die "dpkg-repack nodejs failed"; }
  rm -rf "$work"
}
# --- end of the Debian system ---

# --- The differential corpus (test/compat/corpus.test.ts) ---
# Real messages from the test suites of Debian packages, unpacked from their
# .deb files (never installed: only the sample files are wanted, not the
# programs and their dependencies) into $MAIL_CORPUS_DIR/PACKAGE/, each with
# its package's copyright file. test/compat/corpus/manifest names every file
# and its sha256.
MAIL_CORPUS_DIR=/var/cache/mailsubmit/corpus
# package:directory-or-file-in-the-package ... (several per package, space-separated)
MAIL_CORPUS_SOURCES=(
  "libpython3.11-testsuite:./usr/lib/python3.11/test/test_email/data"
  "python3-flufl.bounce:./usr/lib/python3/dist-packages/flufl/bounce/tests/data"
  "golang-github-jhillyerd-enmime-dev:./usr/share/gocode/src/github.com/jhillyerd/enmime/testdata"
  "spamassassin:./usr/share/doc/spamassassin/examples/sample-spam.txt ./usr/share/doc/spamassassin/examples/sample-nonspam.txt"
)
# A package whose /usr/share/doc entry is a link to another binary package of
# the same source: that package's .deb holds the copyright file.
declare -A MAIL_CORPUS_LICENCE_PACKAGE=([libpython3.11-testsuite]=python3.11)

mail_corpus_present() {
  local source package
  for source in "${MAIL_CORPUS_SOURCES[@]}"; do
    package=${source%%:*}
    [ -f "$MAIL_CORPUS_DIR/$package/.unpacked" ] || return 1
  done
}

unpack_mail_corpus() {
  local source package paths deb licence
  [ -n "${apt_updated:-}" ] || { DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; }
  mkdir -p "$DEB_CACHE"
  for source in "${MAIL_CORPUS_SOURCES[@]}"; do
    package=${source%%:*}
    paths=${source#*:}
    [ -f "$MAIL_CORPUS_DIR/$package/.unpacked" ] && continue
    licence=${MAIL_CORPUS_LICENCE_PACKAGE[$package]:-$package}
    download_corpus_deb "$package"
    [ "$licence" = "$package" ] || download_corpus_deb "$licence"
    deb=$(compgen -G "$DEB_CACHE/${package}_*.deb" | sort -V | tail -n 1)
    say "unpacking the mail samples of $(basename "$deb") into $MAIL_CORPUS_DIR/$package"
    rm -rf "$MAIL_CORPUS_DIR/$package"
    mkdir -p "$MAIL_CORPUS_DIR/$package"
    # shellcheck disable=SC2086 # paths is a space-separated list
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$MAIL_CORPUS_DIR/$package" $paths \
      || die "could not unpack the mail samples of $deb"
    dpkg-deb --fsys-tarfile "$(compgen -G "$DEB_CACHE/${licence}_*.deb" | sort -V | tail -n 1)" |
      tar -x -O "./usr/share/doc/$licence/copyright" >"$MAIL_CORPUS_DIR/$package/copyright" \
      || die "could not unpack the copyright file of $licence"
    dpkg-deb -f "$deb" Version >"$MAIL_CORPUS_DIR/$package/.unpacked"
  done
}

download_corpus_deb() {
  compgen -G "$DEB_CACHE/${1}_*.deb" >/dev/null && return 0
  say "downloading $1 into $DEB_CACHE (for the mail corpus)"
  (cd "$DEB_CACHE" && apt-get download -qq -o APT::Sandbox::User=root "$1") || die "apt-get could not download $1"
}

if mail_corpus_present; then
  say "the mail corpus is unpacked in $MAIL_CORPUS_DIR"
else
  [ "$(id -u)" -eq 0 ] || die "the mail corpus is missing; run as root: it downloads packages from Debian's archive"
  unpack_mail_corpus
fi
# --- end of the differential corpus ---

if debian_system_present; then
  say "the Debian system for the package's tests is in $DEBIAN_SYSTEM"
else
  [ "$(id -u)" -eq 0 ] || die "the Debian system for the package's tests is missing; run as root: it runs debootstrap"
  command -v debootstrap >/dev/null || apt_install_services_held debootstrap
  make_debian_system
fi
if [ -f "$(nodejs_repack 2>/dev/null || echo /nonexistent)" ]; then
  say "this machine's Node.js is repacked for it"
else
  [ "$(id -u)" -eq 0 ] || die "this machine's Node.js is not repacked for the Debian system yet; run as root"
  repack_nodejs
fi

if nothing_missing; then
  say "the test tools are installed (qpsmtpd, swaks, perl, TLS tools, the second MTA's packages)"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "some test tools are missing; run as root: it installs packages from Debian's archive"
install_missing_packages
download_second_mta
install_second_mta_libraries
