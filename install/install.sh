#!/usr/bin/env bash
# install.sh: set up mailsubmit from this source tree and show it working.
#
# Idempotent: run it again after an update. Steps, each skipped when done:
#   1. check the platform (Node.js >= 20.11, npm)
#   2. install the build's dependencies from the lock file (npm ci)
#   3. build every command (npm run build)
#   4. check the contract's example submission with mailsubmitctl validate
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

check_platform() {
  command -v node >/dev/null || die "Node.js 20.11 or later is required (apt-get install nodejs)"
  command -v npm >/dev/null || die "npm is required (apt-get install npm)"
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=11)?0:1)' \
    || die "Node.js 20.11 or later is required, found $(node --version)"
}

install_dependencies() {
  # npm ci is exact and repeatable; skip it when the lock file has not changed since.
  if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    say "dependencies are up to date"
    return
  fi
  say "installing dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
}

build() {
  say "building"
  npm run --silent build
}

show_example() {
  say "checking the example submission (docs/examples/submission.txt):"
  node_modules/.bin/mailsubmitctl validate docs/examples/submission.txt
}

check_platform
install_dependencies
build
show_example
say "done"
