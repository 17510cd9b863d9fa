# What the test suite needs beside Python packages: headless Chromium, a PostgreSQL server, and swaks
# (a third-party SMTP client the relay is tested with).
# shellcheck shell=bash

ensure_chromium() {
  if [ -z "${MAILBEACON_CHROMIUM:-}" ]; then
    for path in /usr/bin/chromium /usr/bin/chromium-browser; do
      [ -x "$path" ] && export MAILBEACON_CHROMIUM=$path && break
    done
  fi
  if [ -z "${MAILBEACON_CHROMIUM:-}" ]; then
    log "installing Debian's chromium for the browser tests"
    if apt_install chromium; then export MAILBEACON_CHROMIUM=/usr/bin/chromium
    else log "could not install chromium: browser tests will skip (and fail under CI)"; fi
  fi
}

ensure_swaks() {
  if ! command -v swaks >/dev/null; then
    log "installing Debian's swaks for the SMTP client tests"
    apt_install swaks || log "could not install swaks: its test will skip"
  fi
}

pg_answers() {
  .venv/bin/python - "$1" <<'PY' 2>/dev/null
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
}

ensure_postgres() {
  local url=${MAILBEACON_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}
  if ! pg_answers "$url"; then
    if command -v pg_ctlcluster >/dev/null; then
      log "starting PostgreSQL"
      as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    elif log "installing PostgreSQL from Debian" && apt_install postgresql; then
      as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    fi
    for _ in $(seq 1 30); do pg_answers "$url" && break; sleep 1; done
  fi
  if ! pg_answers "$url" && [ -z "${MAILBEACON_TEST_POSTGRES:-}" ] && command -v psql >/dev/null; then
    # A stock Debian server allows no password-less TCP logins: make a test role once.
    as_root su postgres -c "psql -qc \"DO \\\$\\\$BEGIN CREATE ROLE mailbeacon_test LOGIN CREATEDB PASSWORD 'mailbeacon_test'; EXCEPTION WHEN duplicate_object THEN NULL; END\\\$\\\$\"" >/dev/null 2>&1 || true
    url=postgresql://mailbeacon_test:mailbeacon_test@127.0.0.1:5432/postgres
  fi
  if pg_answers "$url"; then export MAILBEACON_TEST_POSTGRES=$url
  else log "PostgreSQL is not reachable: its tests will skip (and fail under CI)"; fi
}
