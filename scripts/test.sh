#!/usr/bin/env bash
# Runs the whole test suite. Uses cargo-nextest where it is installed (each test in its own
# process, with a per-test timeout from .config/nextest.toml), plain cargo test otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# The browser test drives Debian's chromium, headless.
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "test: installing Debian's chromium for the browser test" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# The store tests run the same suite on SQLite and on a real PostgreSQL on loopback.
CITYWATCH_TEST_POSTGRES="$(./scripts/postgres.sh)"
export CITYWATCH_TEST_POSTGRES
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --locked --no-fail-fast
else
  exec cargo test --workspace --locked --no-fail-fast
fi
