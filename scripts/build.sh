#!/bin/sh
# Builds the Worker (build/index.js + build/index_bg.wasm) with worker-build, and puts the voice
# page's copy of the browser SDK in place.
# wrangler runs this as its [build] command. The wasm step does nothing when SKIP_WORKER_BUILD is
# set or when build/ is newer than every source file (src/bin is native-only; page/index.html is
# compiled in) and this script, so wrangler's repeated build runs are free.
# wasm-opt runs here rather than inside worker-build: worker-build always adds `--debuginfo`, which
# keeps the wasm name section (function names, about 42 KB of the gzipped wasm) for readable
# wasm stack traces. WASM_NAMES=1 keeps it, e.g. to profile or to read a panic's stack.
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
  && [ -z "$(find src page/index.html Cargo.toml Cargo.lock scripts/build.sh -newer build/index_bg.wasm -not -path 'src/bin/*' 2>/dev/null | head -n 1)" ]; then
  exit 0
fi

sh scripts/setup.sh
WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_BINDGEN_BIN
# Until wasm-opt has run the build is not done: if anything stops it before then, no
# fresh-looking build/index_bg.wasm may stay behind to pass the check above.
trap 'rm -f build/index_bg.wasm build/index_bg.wasm.opt' EXIT
worker-build --release --no-opt

# worker-build's own wasm-opt arguments (-O, the same feature list), minus `--debuginfo`, plus
# `--low-memory-unused`: Rust's wasm32 stack is the first MiB of memory and grows down, so the
# low 1 KiB is never addressed, and wasm-opt may then fold constant offsets into loads and
# stores (about 1.6 KB of the gzipped wasm).
names=""
[ -z "${WASM_NAMES:-}" ] || names="--debuginfo"
"$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.wasm.opt -O --low-memory-unused $names \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
mv build/index_bg.wasm.opt build/index_bg.wasm
trap - EXIT
