#!/usr/bin/env bash
# Regenerates BENCHMARKS.md and bench/results.json: builds the release worker, then measures it
# in Miniflare against the GitHub emulator (default 80 ms simulated upstream latency).
#   npm run bench                    # full run, a few minutes on 2 cores
#   npm run bench -- --latency 40    # another simulated latency
#   npm run bench -- --quick         # fewer samples, for a smoke check
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
bash scripts/build.sh
node bench/run.mjs "$@"
