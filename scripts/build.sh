#!/bin/sh
# Builds the Worker (build/index.js + build/index_bg.wasm) with worker-build.
# wrangler runs this as its [build] command. It does nothing when SKIP_WORKER_BUILD is set or
# when build/ is newer than every source file (src/bin is native-only), so wrangler's repeated
# build runs are free.
set -eu
. "$(dirname "$0")/env.sh"
cd "$ROOT"

[ -z "${SKIP_WORKER_BUILD:-}" ] || exit 0
if [ -f build/index.js ] && [ -f build/index_bg.wasm ] \
  && [ -z "$(find src Cargo.toml Cargo.lock -newer build/index_bg.wasm -not -path 'src/bin/*' 2>/dev/null | head -n 1)" ]; then
  exit 0
fi

sh scripts/setup.sh
WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_BINDGEN_BIN
worker-build --release
