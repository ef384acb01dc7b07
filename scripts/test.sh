#!/bin/sh
# Runs every check and test: formatting, clippy (wasm and native), native unit tests, the
# integration tests against the real worker under `wrangler dev` (the voice page's in headless
# Chromium), and an offline deploy dry run.
# Installs whatever is missing first (see scripts/setup.sh) and reuses what is there.
set -eu
. "$(dirname "$0")/env.sh"
cd "$ROOT"

# wrangler/workerd process groups left behind if the test process itself was killed.
cleanup() {
  for f in target/e2e/*.pgid; do
    [ -e "$f" ] || continue
    kill -KILL -- "-$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}
trap cleanup EXIT INT TERM

step() { printf '\n==> %s\n' "$*"; }

step "setup"
sh scripts/setup.sh
# The browser tests (tests/voice_page.rs) need two Debian packages: Chromium, driven headless by
# playwright-core, and espeak-ng, the voice of the local Layercode stand-in. Installed here when
# missing, from Debian's archive only (no browser download from anywhere else).
missing=""
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing="$missing chromium"
command -v espeak-ng >/dev/null 2>&1 || missing="$missing espeak-ng"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: apt-get install$missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y $missing || { apt-get update && apt-get install -y $missing; }
  else
    echo "setup: the browser tests need$missing: run 'sudo apt-get install -y$missing'" >&2
  fi
fi
for component in rustfmt clippy; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done
rustc --version; worker-build --version; wasm-bindgen --version
node --version; npx --no-install wrangler --version; "$WASM_OPT_BIN" --version
"${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null || true
espeak-ng --version 2>/dev/null || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "build the worker (wasm)"
sh scripts/build.sh
ls -l build/index_bg.wasm
printf 'wasm gzip bytes: %s\n' "$(gzip -9 -c build/index_bg.wasm | wc -c)"

step "clippy (wasm32 and native, warnings are errors)"
cargo clippy --target wasm32-unknown-unknown -- -D warnings
cargo clippy --all-targets -- -D warnings

step "offline deploy dry run"
SKIP_WORKER_BUILD=1 npx --no-install wrangler deploy --dry-run --outdir target/dry-run

step "tests: native unit tests and integration tests against wrangler dev"
mkdir -p target
rm -f target/test-status
{
  status=0
  # Every test binary runs even when one fails, so the closing line counts the whole suite.
  cargo test --all-targets --no-fail-fast || status=$?
  echo "$status" > target/test-status
} 2>&1 | tee target/test-output.log
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' \
  target/test-output.log
exit "$(cat target/test-status)"
