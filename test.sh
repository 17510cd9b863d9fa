#!/usr/bin/env bash
# Set everything up and run the whole test suite: lint, types, unit, PostgreSQL, end-to-end, browser.
# Extra arguments go to pytest (e.g. ./test.sh -k tokens).
set -euo pipefail
cd "$(dirname "$0")"
. scripts/lib.sh
ensure_venv requirements-dev.lock
. scripts/test-services.sh
ensure_chromium
ensure_postgres
ensure_swaks

log "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
log "mypy"
.venv/bin/mypy
log "pytest"
.venv/bin/python -m pytest "$@"
