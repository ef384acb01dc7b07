#!/bin/sh
# Runs every check and test: formatting, clippy (wasm and native), native unit tests, the
# integration tests against the real worker under `wrangler dev`, and an offline deploy dry run.
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
for component in rustfmt clippy; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done
rustc --version; worker-build --version; wasm-bindgen --version
node --version; npx --no-install wrangler --version; "$WASM_OPT_BIN" --version

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
