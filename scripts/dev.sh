#!/bin/sh
# Runs the worker locally under `wrangler dev` (local Durable Object storage in .wrangler/).
# Installs whatever is missing first, creates .dev.vars from the example if needed, and says
# which secrets are still empty. Extra arguments go to wrangler (e.g. --port 8788).
# MOCK_GEMINI=1 runs against an offline Gemini stand-in instead of Google (no key needed).
set -eu
. "$(dirname "$0")/env.sh"
cd "$ROOT"

sh scripts/setup.sh

if [ ! -f .dev.vars ]; then
  # A random local webhook secret, so the simulator (layercode-sim) works out of the box, and a
  # random conversation cookie secret, so a page can resume its conversations.
  secret="local_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  cookie_secret="local_$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
  sed -e "s/^LAYERCODE_WEBHOOK_SECRET=\"\"/LAYERCODE_WEBHOOK_SECRET=\"$secret\"/" \
    -e "s/^CONVERSATION_COOKIE_SECRET=\"\"/CONVERSATION_COOKIE_SECRET=\"$cookie_secret\"/" \
    .dev.vars.example > .dev.vars
  echo "dev: created .dev.vars with a random local LAYERCODE_WEBHOOK_SECRET (replace it with"
  echo "     your agent's webhook secret when you connect a real Layercode agent) and"
  echo "     CONVERSATION_COOKIE_SECRET"
fi
if ! grep -Eq '^CONVERSATION_COOKIE_SECRET="?[^"[:space:]]' .dev.vars; then
  echo "dev: CONVERSATION_COOKIE_SECRET is empty in .dev.vars: /authorize refuses to resume"
  echo "     conversations until it is set (see README, Configuration)"
fi
for name in LAYERCODE_WEBHOOK_SECRET LAYERCODE_API_KEY GOOGLE_GENERATIVE_AI_API_KEY; do
  if ! grep -Eq "^${name}=\"?[^\"[:space:]]" .dev.vars; then
    echo "dev: $name is empty in .dev.vars: fill it in and restart (see README, Configuration)"
  fi
done

sh scripts/build.sh

# MOCK_GEMINI=1: no Google key needed; an offline stand-in streams echo replies.
if [ "${MOCK_GEMINI:-}" = 1 ]; then
  port="${MOCK_GEMINI_PORT:-8790}"
  cargo build --quiet --bin mock-gemini
  target/debug/mock-gemini --port "$port" &
  mock_pid=$!
  trap 'kill "$mock_pid" 2>/dev/null' EXIT INT TERM
  set -- --var "GEMINI_API_BASE_URL:http://127.0.0.1:$port" \
    --var "GOOGLE_GENERATIVE_AI_API_KEY:offline-mock" "$@"
fi
npx --no-install wrangler dev "$@"
