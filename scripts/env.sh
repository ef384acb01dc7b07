# Sourced by the other scripts: tool locations and quiet, offline-friendly wrangler settings.
# worker-build would otherwise try to download wasm-bindgen and wasm-opt from GitHub.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# The machine's PATH, for npm itself (npm ci replaces node_modules/.bin while it runs).
MACHINE_PATH="$PATH"
# node_modules/.bin first: its `node` is the pinned Node 22 (npm package `node`) that the pinned
# wrangler needs, whatever Node the machine has; wrangler's `#!/usr/bin/env node` then finds it.
export PATH="$ROOT/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
if command -v wasm-bindgen >/dev/null 2>&1; then
  WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
  export WASM_BINDGEN_BIN
fi
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false

# The wasm-bindgen version locked in Cargo.lock; the CLI must match it exactly.
locked_wasm_bindgen_version() {
  awk '$0=="name = \"wasm-bindgen\""{getline; gsub(/version = |"/,""); print; exit}' "$ROOT/Cargo.lock"
}
