# Man pages: scripts/build-man.mjs turns docs/man/*.md into build/man/manN/
# during the build; this installs them as they are.

# install_man_pages PREFIX: every page in build/man into PREFIX/share/man/manN/,
# 0644, then refreshes the man-db index where there is one (apropos, whatis).
install_man_pages() {
  local prefix=$1 page section count=0 names=()
  for page in build/man/man*/*; do
    [ -f "$page" ] || continue
    # The Debian package's command: install.sh adds the listener itself.
    [ "$(basename "$page")" = mailsubmit-postfix-listener.8 ] && continue
    section=$(basename "$(dirname "$page")")
    install -d -m 0755 "$prefix/share/man/$section"
    install -m 0644 "$page" "$prefix/share/man/$section/"
    count=$((count + 1))
    names+=("$(basename "$page" ".${section#man}")")
  done
  if [ "$count" -eq 0 ]; then
    say "no man pages in build/man (they come from 'npm run build'); none installed"
    return 0
  fi
  # The index is a convenience: man finds the pages without it.
  if command -v mandb >/dev/null; then mandb -q >/dev/null 2>&1 || true; fi
  say "installed $count man pages in $prefix/share/man ($(printf 'man %s, ' "${names[@]}" | sed 's/, $//'))"
}
