#!/usr/bin/env bash
# The test suite: installs everything (Debian packages, the Asterisk chroot,
# Python deps), makes sure PostgreSQL runs, then runs pytest on both
# databases against the real lab Asterisk, two workers in parallel.
# Extra arguments go to pytest (e.g. scripts/test.sh -m unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "==> starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi

export OPENBLAS_NUM_THREADS=1
exec .venv/bin/pytest -n "${KALLIOPE_TEST_WORKERS:-2}" -p no:cacheprovider "$@"
