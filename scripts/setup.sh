#!/bin/sh
# Installs whatever the build needs and is missing; reuses what is already there.
# Tools: the wasm32 Rust target, worker-build 0.8.7, wasm-bindgen-cli matching Cargo.lock,
# and the npm packages (Node 22.23.3, wrangler 4.164.0, binaryen 132) from package-lock.json.
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

# npm ci only when node_modules is missing, older than the lockfile, or lacks the pinned Node.
pinned_node() { node_modules/.bin/node --version 2>/dev/null | grep -q '^v22\.'; }
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || ! pinned_node; then
  echo "setup: npm ci"
  # With the machine's Node and npm: any Node 20+ can install the pinned Node 22.
  PATH="$MACHINE_PATH" npm ci --no-audit --no-fund
fi
# The npm package `node` gets its binary from a preinstall script; npm skips install scripts that
# package.json's allowScripts does not approve, and says so only in a warning.
if ! pinned_node; then
  echo "setup: node_modules/.bin/node is not Node 22: its install script did not run" >&2
  echo "       (package.json allowScripts must approve \"node\"; see README, Two commands)" >&2
  exit 1
fi
