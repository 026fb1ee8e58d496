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
# The web test checks the served OpenAPI document with a standard validator, as a client
# would: openapi-spec-validator from PyPI, pinned, in its own virtual environment.
OAV=.local/openapi-validator
if [ ! -x "$OAV/bin/openapi-spec-validator" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  echo "test: installing openapi-spec-validator into $OAV" >&2
  rm -rf "$OAV"
  python3 -m venv "$OAV"
  "$OAV/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator==0.9.0"
fi
# The store tests run the same suite on SQLite and on a real PostgreSQL on loopback.
CITYWATCH_TEST_POSTGRES="$(./scripts/postgres.sh)"
export CITYWATCH_TEST_POSTGRES
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --locked --no-fail-fast
else
  exec cargo test --workspace --locked --no-fail-fast
fi
