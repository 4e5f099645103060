#!/usr/bin/env bash
# Every check, in the order a failure is cheapest to find: formatting, lints (native and wasm32),
# native unit and integration tests, the release wasm build, then end-to-end tests of that build
# in Miniflare against the local GitHub emulator. Installs whatever is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false

bash scripts/setup.sh
# The dashboard test drives Debian's Chromium; install it when missing (CI runs as root).
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
      echo "!!! chromium could not be installed: the browser test will fail under CI (FORGELENS_SKIP_BROWSER=1 skips it)"
  else
    echo "!!! chromium is missing and cannot be installed here: the browser test will fail under CI (FORGELENS_SKIP_BROWSER=1 skips it)"
  fi
fi
echo "== cargo fmt --check, the worker's JS texts up to date"
cargo fmt --check
node scripts/assets.mjs --check
echo "== cargo clippy (native and wasm32)"
cargo clippy --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings
echo "== cargo test"
cargo test
echo "== release build"
bash scripts/build.sh
echo "== end-to-end tests (Miniflare + GitHub emulator)"
node --test --test-concurrency=1 tests/e2e/
