#!/bin/sh
# Installs whatever the build needs and is missing; reuses what is already there.
# Tools: the wasm32 Rust target, worker-build 0.8.7, wasm-bindgen-cli matching Cargo.lock,
# and the npm packages (wrangler 4.86.0, binaryen 132) from package-lock.json.
set -eu
. "$(dirname "$0")/env.sh"
cd "$ROOT"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(worker-build --version 2>/dev/null || true)" != "0.8.7" ]; then
  echo "setup: installing worker-build 0.8.7 (a few minutes, once)"
  cargo install --locked worker-build --version 0.8.7
fi

WB_VERSION="$(locked_wasm_bindgen_version)"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  echo "setup: installing wasm-bindgen-cli $WB_VERSION (a few minutes, once)"
  # Not --locked: its lockfile pins a webpki-roots version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

# npm ci only when node_modules is missing or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi
