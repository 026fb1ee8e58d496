#!/usr/bin/env bash
# Runs the whole test suite. Uses cargo-nextest where it is installed (each test in its own
# process, with a per-test timeout from .config/nextest.toml), plain cargo test otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# The store tests run the same suite on SQLite and on a real PostgreSQL on loopback.
CITYWATCH_TEST_POSTGRES="$(./scripts/postgres.sh)"
export CITYWATCH_TEST_POSTGRES
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --locked --no-fail-fast
else
  exec cargo test --locked --no-fail-fast
fi
