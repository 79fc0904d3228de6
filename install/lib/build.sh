# Step 2: dependencies and every build product, then the helper for this
# install. The helper's paths are compiled in (never read at run time), so it
# is built again for every install, with this install's socket and
# authorization list, into a scratch directory: the tree's own
# packages/submit-helper/build/mailsubmit keeps the default paths.

build_everything() {
  if [ "$build" -eq 0 ]; then
    local product
    for product in packages/submit-daemon/dist/mailsubmitd.mjs packages/submit-daemon/dist/socket_addon.node \
      packages/admin-cli/dist/mailsubmitctl.cjs; do
      [ -f "$product" ] || die "--no-build: $product is missing; run 'npm run build' first"
    done
    say "using the build products in the tree as they are (--no-build)"
    return
  fi
  # npm ci is exact and repeatable; skip it when the lock file has not changed since.
  if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    say "dependencies are up to date"
  else
    say "installing dependencies (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  say "building the socket addon, the bundles and the helper"
  npm run --silent build
}

# build_helper: prints the path of a helper compiled for this layout.
build_helper() {
  local scratch
  scratch=$(mktemp -d /tmp/mailsubmit-helper-XXXXXX)
  make -s --no-print-directory -C packages/submit-helper \
    SOCKET="$SOCKET_PATH" AUTH_LIST="$AUTH_LIST" OUT="$scratch/mailsubmit" >&2 \
    || { rm -rf "$scratch"; die "the helper did not compile (see above)"; }
  printf '%s\n' "$scratch/mailsubmit"
}
