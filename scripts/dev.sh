#!/bin/sh
# Runs the worker locally under `wrangler dev` (local Durable Object storage in .wrangler/), with
# the voice page at http://127.0.0.1:8787/ talking to a local stand-in for Layercode's cloud
# (`layercode-sim serve`): a conversation in the browser with no Layercode account and no network.
# Installs whatever is missing first, creates .dev.vars from the example if needed, and says
# which secrets are still empty. Extra arguments go to wrangler (e.g. --port 8788).
# The model is the offline Gemini stand-in when MOCK_GEMINI=1 or when .dev.vars has no Gemini key
# (MOCK_GEMINI=0 keeps the real API even then). Ctrl-C stops everything this started.
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
has_value() { grep -Eq "^$1=\"?[^\"[:space:]]" .dev.vars; }
if ! has_value LAYERCODE_WEBHOOK_SECRET; then
  echo "dev: LAYERCODE_WEBHOOK_SECRET is empty in .dev.vars: fill it in and restart (see README, Configuration)"
fi

sh scripts/build.sh
cargo build --quiet --bin layercode-sim --bin mock-gemini

# The worker's port, for the stand-in's webhooks and the printed URL (wrangler's default 8787).
worker_port=8787
previous=""
for arg in "$@"; do
  case "$previous" in --port) worker_port="$arg" ;; esac
  case "$arg" in --port=*) worker_port="${arg#--port=}" ;; esac
  previous="$arg"
done

pids=""
stop_all() {
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The model: the offline stand-in, or Gemini with the key from .dev.vars.
if [ "${MOCK_GEMINI:-}" = 1 ] || { [ "${MOCK_GEMINI:-}" != 0 ] && ! has_value GOOGLE_GENERATIVE_AI_API_KEY; }; then
  port="${MOCK_GEMINI_PORT:-8790}"
  target/debug/mock-gemini --port "$port" &
  pids="$pids $!"
  echo "dev: replies come from the offline mock model (put GOOGLE_GENERATIVE_AI_API_KEY in .dev.vars for Gemini)"
  set -- --var "GEMINI_API_BASE_URL:http://127.0.0.1:$port" \
    --var "GOOGLE_GENERATIVE_AI_API_KEY:offline-mock" "$@"
fi

# Layercode: the local stand-in, on a port the kernel picks; it prints that port on one line.
mkdir -p target/dev
standin_out=target/dev/layercode-sim.out
: > "$standin_out"
api_key="local_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
agent_id=local_agent
target/debug/layercode-sim serve --url "http://127.0.0.1:$worker_port" \
  --api-key "$api_key" --agent-id "$agent_id" > "$standin_out" &
standin_pid=$!
pids="$pids $standin_pid"
tries=0
until grep -q "Layercode stand-in on" "$standin_out"; do
  if ! kill -0 "$standin_pid" 2>/dev/null || [ "$tries" -ge 100 ]; then
    echo "dev: the Layercode stand-in did not start" >&2
    exit 1
  fi
  tries=$((tries + 1))
  sleep 0.1
done
cat "$standin_out"
standin_url="$(sed -n 's/^layercode-sim: Layercode stand-in on \(http:[^ ]*\).*/\1/p' "$standin_out")"

url="http://127.0.0.1:$worker_port/"
echo "dev: the voice page will be at $url (type to talk; the stand-in has no speech recognition)"
if command -v curl >/dev/null 2>&1; then
  (
    until curl -fs -o /dev/null "${url}health"; do sleep 0.5; done
    echo "dev: ready: open $url"
  ) &
  pids="$pids $!"
fi

npx --no-install wrangler dev \
  --var "VOICE_PAGE:local" \
  --var "LAYERCODE_API_BASE_URL:$standin_url" \
  --var "LAYERCODE_API_KEY:$api_key" \
  --var "LAYERCODE_AGENT_ID:$agent_id" \
  "$@"
