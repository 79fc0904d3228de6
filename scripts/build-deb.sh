#!/usr/bin/env bash
# build-deb.sh OUTDIR: builds mailsubmit_VERSION_ARCH.deb with
# dpkg-buildpackage and puts it in OUTDIR. The build runs in a copy of the
# tracked and new files of this tree (git ls-files), so nothing of it is left
# in the tree; node_modules is copied in beside them, as 'npm ci' left it.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: npm run deb -- OUTDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$here"

[ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ] \
  || { echo "build-deb: node_modules is missing or older than package-lock.json; run 'npm ci' first" >&2; exit 1; }

scratch=$(mktemp -d /tmp/mailsubmit-deb-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
tree=$scratch/mailsubmit
mkdir "$tree"
# Files deleted in the work tree but still in the index are left out.
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' file; do
    if [ -e "$file" ] || [ -L "$file" ]; then printf '%s\0' "$file"; fi
  done | tar -c --null -T - | tar -x -C "$tree"
# The workspace links in node_modules are relative: in the copy they name the copy's packages.
cp -a node_modules "$tree/node_modules"

(cd "$tree" && dpkg-buildpackage -us -uc -b >"$scratch/build.log" 2>&1) \
  || { tail -n 40 "$scratch/build.log" >&2; echo "build-deb: dpkg-buildpackage failed" >&2; exit 1; }
for deb in "$scratch"/*.deb; do
  mv -f "$deb" "$out/"
  echo "$out/$(basename "$deb")"
done
