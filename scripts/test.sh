#!/usr/bin/env bash
# Every check, in the order a failure is cheapest to find: formatting, lints (native and wasm32),
# native unit and integration tests, the release wasm build, then end-to-end tests of that build
# in Miniflare against the local GitHub emulator. Installs whatever is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false

bash scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy (native and wasm32)"
cargo clippy --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings
echo "== cargo test"
cargo test
echo "== release build"
bash scripts/build.sh
echo "== end-to-end tests (Miniflare + GitHub emulator)"
node --test --test-concurrency=1 tests/e2e/
