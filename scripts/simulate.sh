#!/usr/bin/env bash
# A long exploration of the deterministic simulation (tests/simulation.rs), beside CI's short one:
#   npm run simulate -- --seeds 100000          (seeds 1..N; --from K starts at K)
#   npm run simulate -- --seed 4242             (replay one seed, with its trace on failure)
#   npm run simulate -- --seeds 5000 --steps 120 (longer runs per seed)
# Prints a progress line every 100 seeds and a summary (seeds, operations, faults injected per
# kind); the first violation stops it with its seed, the invariant and the trace.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) export SIM_SEEDS="$2"; shift 2 ;;
    --from) export SIM_FROM="$2"; shift 2 ;;
    --seed) export SIM_SEED="$2"; shift 2 ;;
    --steps) export SIM_STEPS="$2"; shift 2 ;;
    *) echo "usage: npm run simulate -- [--seeds N [--from K] | --seed S] [--steps K]" >&2; exit 2 ;;
  esac
done
export SIM_SEEDS="${SIM_SEEDS:-$seeds}"
export SIM_PROGRESS=1
exec cargo test --test simulation -- --nocapture
