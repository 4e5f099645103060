#!/usr/bin/env bash
# Regenerates BENCHMARKS.md and bench/results.json: builds the release worker, then measures it
# in Miniflare against the GitHub emulator (default 80 ms simulated upstream latency).
#   npm run bench                    # full run, several minutes on 2 cores (the 10,000-repository
#                                    # owner alone takes ~2 minutes at 1 s per page)
#   npm run bench -- --latency 40    # another simulated latency
#   npm run bench -- --page-ms 2000  # another owner page cost in the large-owner section (default 1000)
#   npm run bench -- --quick         # fewer samples and 100 ms owner pages, for a smoke check
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
bash scripts/build.sh
node bench/run.mjs "$@"
