#!/usr/bin/env bash
# Builds the release worker into build/ (index.js + index_bg.wasm), then strips the wasm with
# binaryen's wasm-opt from npm: worker-build would fetch its own wasm-bindgen and wasm-opt from
# GitHub, which is not reachable everywhere, so both are handed to it explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."
# Up to date when no input is newer than the shipped wasm: `wrangler dev` (4.86, pinned for
# Node 20) runs this command again the moment its watcher has scanned src/, and again on every
# change there; the second run must neither redo a minute of work nor race the first on build/.
# FORCE_BUILD=1 builds anyway.
# build/.built is written last, so a build that failed (the budget below) is never up to date.
stamp=build/.built
if [ "${FORCE_BUILD:-}" != "1" ] && [ -f "$stamp" ] && [ -s build/index_bg.wasm ] &&
  [ -z "$(find src Cargo.toml Cargo.lock scripts/build.sh scripts/assets.mjs scripts/imports.mjs \
    -newer "$stamp" -print -quit)" ]; then
  echo "build: up to date ($(gzip -9 -c < build/index_bg.wasm | wc -c) bytes gzip)"
  exit 0
fi
rm -f "$stamp"
bash scripts/setup.sh
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
# The texts the worker serves travel in its JS module, not the wasm (src/shell/assets.rs).
node scripts/assets.mjs
# A panic's message names its source file, a dependency's under the registry's absolute directory
# (`$CARGO_HOME/registry/src/index.crates.io-…/`), which adds nothing to the message but bytes:
# dropped from the paths (`serde_json-1.0.154/src/raw.rs`), -0.2 KB gzip. (The standard
# library's `/rustc/{commit}/` comes with its prebuilt files and is not remapped this way.)
remap=()
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  [ -d "$dir" ] && remap+=("--remap-path-prefix=$dir=")
done
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remap[*]:-}"
worker-build --release
# Two files from worker-build's output: build/index_bg.wasm, shipped, and
# target/index_bg.named.wasm, optimised alike but keeping function names (for bench/profile.mjs
# and bench/size.mjs; kept out of build/, which is what deploys). Keeping names (-g) changes what
# -Oz may merge, so the shipped file is optimised on its own; -Oz without -g also drops the name
# section worker-build keeps.
# --low-memory-unused lets binaryen fold `ptr + constant` into a load's or store's offset: the two
# differ only when the add would wrap past 4 GiB into the first KiB of memory, which no valid Rust
# pointer does (memory is far below 4 GiB). It saves about 2.5 KB gzip.
# --ignore-implicit-traps lets binaryen assume no load, store or division traps on its own (an
# explicit `unreachable`, where a Rust panic ends, still traps): safe Rust never reads outside
# memory, checks divisors before dividing, and converts floats saturating. It saves about 0.4 KB
# gzip. (--traps-never-happen would save more but may drop the code leading to a panic's trap.)
FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-exception-handling
  --low-memory-unused --ignore-implicit-traps)
# The producers and target-features sections name the tools and the features built for; nothing
# reads them at run time (-0.2 KB gzip).
STRIP=(--strip-producers --strip-target-features)
# Functions are laid out in the order of their (Rust) names before -Oz: a crate's and a module's
# functions, and the instances of one generic function, side by side, where gzip finds what they
# share within its window (-4.2 KB gzip). Only the order of the code section changes.
ORDER=(--reorder-functions-by-name)
"$WASM_OPT_BIN" "${ORDER[@]}" -Oz --converge -g "${FEATURES[@]}" "${STRIP[@]}" build/index_bg.wasm \
  -o target/index_bg.named.wasm
"$WASM_OPT_BIN" "${ORDER[@]}" -Oz --converge "${FEATURES[@]}" "${STRIP[@]}" build/index_bg.wasm \
  -o build/index_bg.wasm
# wasm-bindgen's import names carry a hash each (`__wbg_get_57b93e4469e51558`) that gzip cannot
# shrink: short names instead, in both wasm files and in index.js's import object (-3.4 KB gzip).
node scripts/imports.mjs
raw=$(wc -c < build/index_bg.wasm)
gz=$(gzip -9 -c < build/index_bg.wasm | wc -c)
echo "wasm: ${raw} bytes raw, ${gz} bytes gzip"
# DESIGN.md's budget: the release wasm stays under 300 KB gzip. Over it, the build fails, so a
# change that grows it past the budget cannot land unnoticed (`node bench/size.mjs` says where).
budget=300000
if [ "$gz" -ge "$budget" ]; then
  echo "wasm is ${gz} bytes gzip, over the ${budget}-byte budget (see node bench/size.mjs)" >&2
  exit 1
fi
touch "$stamp"
