#!/bin/sh
# Runs the worker locally under `wrangler dev` (local Durable Object storage in .wrangler/).
# Installs whatever is missing first, creates .dev.vars from the example if needed, and says
# which secrets are still empty. Extra arguments go to wrangler (e.g. --port 8788).
set -eu
. "$(dirname "$0")/env.sh"
cd "$ROOT"

sh scripts/setup.sh

if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  echo "dev: created .dev.vars from .dev.vars.example"
fi
for name in LAYERCODE_WEBHOOK_SECRET LAYERCODE_API_KEY GOOGLE_GENERATIVE_AI_API_KEY; do
  if ! grep -Eq "^${name}=\"?[^\"[:space:]]" .dev.vars; then
    echo "dev: $name is empty in .dev.vars: fill it in and restart (see README, Configuration)"
  fi
done

sh scripts/build.sh
exec npx --no-install wrangler dev "$@"
