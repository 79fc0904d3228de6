# Step 2: dependencies and every build product.

build_everything() {
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
