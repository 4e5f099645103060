#!/usr/bin/env bash
# Installs what the build and tests need on a fresh machine with Rust and Node, skipping whatever
# is already present at the right version: the wasm32 target, worker-build, wasm-bindgen-cli at
# the version Cargo.lock pins, and the npm packages from package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)

for c in rustfmt clippy; do
  rustup component list --installed | grep -q "^$c" || rustup component add "$c"
done
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
if ! worker-build --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
  echo "setup: installing worker-build $WORKER_BUILD_VERSION (takes a few minutes once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
  echo "setup: installing wasm-bindgen-cli $BINDGEN_VERSION (takes a few minutes once)"
  # Not --locked: its lock file can name versions the registry index does not have yet.
  cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION" --force
fi
# Reinstall when package-lock.json changed since the last install. A node_modules that is a
# symlink (a second work tree borrowing another checkout's packages) is never reinstalled: npm ci
# empties the directory it points to, under the other checkout's feet, before replacing the link.
if [ -L node_modules ]; then
  if [ ! -f node_modules/.package-lock.json ]; then
    echo "setup: node_modules is a symlink to an empty install; run npm ci where it points" >&2
    exit 1
  fi
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund
fi
