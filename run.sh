#!/usr/bin/env bash
# Set everything up and run the all-in-one mailbeacon server on SQLite with a demo account.
# Extra arguments go to `mailbeacon serve` (e.g. ./run.sh --port 9000 --public-base-url https://t.example.com).
set -euo pipefail
cd "$(dirname "$0")"
. scripts/lib.sh
ensure_venv requirements.lock
exec .venv/bin/mailbeacon serve --demo "$@"
