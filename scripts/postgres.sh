#!/usr/bin/env bash
# PostgreSQL for the test suite (scripts/test.sh runs every store test on it
# too). A machine that runs one on 127.0.0.1:5432 keeps its own; one with
# Debian's cluster stopped gets it started; a plain Debian machine gets
# Debian's postgresql installed and started, with loopback trusted for the
# 'postgres' role the tests use (tests/conftest.py; KALLIOPE_TEST_PG points
# the tests elsewhere and skips all of this).
set -euo pipefail
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
pg_up() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if [[ -z "${KALLIOPE_TEST_PG:-}" ]] && ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [[ $EUID -ne 0 ]]; then echo "PostgreSQL is not installed and this is not root: run as root, or set KALLIOPE_TEST_PG" >&2; exit 1; fi
    say "installing PostgreSQL (Debian's postgresql) for the tests"
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  if [[ -z "$version" ]]; then echo "PostgreSQL is installed but has no cluster in /etc/postgresql" >&2; exit 1; fi
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q "kalliope-tel tests" "$hba"; then
    # Loopback only, for the tests' throwaway databases: trust, as the machine images here have it.
    say "PostgreSQL $version: trusting loopback connections for the tests ($hba)"
    sed -i '1i # kalliope-tel tests: loopback connections need no password (throwaway test databases)\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi
