#!/bin/sh
# Builds the Worker (build/index.js + build/index_bg.wasm) with worker-build, and puts the voice
# page's copy of the browser SDK in place.
# wrangler runs this as its [build] command. The wasm step does nothing when SKIP_WORKER_BUILD is
# set or when build/ is newer than every source file (src/bin is native-only; page/index.html is
# compiled in), so wrangler's repeated build runs are free.
set -eu
. "$(dirname "$0")/env.sh"
cd "$ROOT"

# The voice page's copy of the browser SDK pinned in package.json, served from the Worker's
# static assets (never from a CDN). Copied whenever it differs from node_modules.
sdk_dir=node_modules/@layercode/js-sdk/dist
vendor=page/public/voice/vendor
[ -f "$sdk_dir/layercode-js-sdk.esm.js" ] || sh scripts/setup.sh
for file in layercode-js-sdk.esm.js layercode-js-sdk.esm.js.map; do
  if ! cmp -s "$sdk_dir/$file" "$vendor/$file"; then
    mkdir -p "$vendor"
    cp "$sdk_dir/$file" "$vendor/$file"
  fi
done

[ -z "${SKIP_WORKER_BUILD:-}" ] || exit 0
if [ -f build/index.js ] && [ -f build/index_bg.wasm ] \
  && [ -z "$(find src page/index.html Cargo.toml Cargo.lock -newer build/index_bg.wasm -not -path 'src/bin/*' 2>/dev/null | head -n 1)" ]; then
  exit 0
fi

sh scripts/setup.sh
WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_BINDGEN_BIN
worker-build --release
