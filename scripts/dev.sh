#!/usr/bin/env bash
# Runs the worker locally with `wrangler dev`. Without a GITHUB_TOKEN in .dev.vars it starts the
# local GitHub emulator (demo owners, no token or internet needed) and points the worker at it;
# with a token it talks to the real GitHub API.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
PORT="${PORT:-8787}"
EMULATOR_PORT="${EMULATOR_PORT:-8788}"

bash scripts/setup.sh

args=(--port "$PORT" --ip 127.0.0.1 --test-scheduled)
if [ -f .dev.vars ] && grep -Eq '^GITHUB_TOKEN=.+' .dev.vars; then
  echo "dev: GITHUB_TOKEN found in .dev.vars, using the real GitHub API"
else
  node tests/emulator/server.mjs "$EMULATOR_PORT" &
  emulator=$!
  trap 'kill "$emulator" 2>/dev/null || true' EXIT INT TERM
  args+=(--var "GITHUB_GRAPHQL_URL:http://127.0.0.1:${EMULATOR_PORT}/graphql" --var "PINNED_ORGS:octo-org")
fi
cat <<MSG

  forgelens will listen on http://localhost:${PORT} once the build finishes (about a minute).
  Try: curl 'http://localhost:${PORT}/v1/orgs/octo-org/repos?fields=name,visibility,ci'

MSG
npx wrangler dev "${args[@]}"
