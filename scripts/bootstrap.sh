#!/usr/bin/env bash
# Install everything kalliope-tel needs on a fresh Debian machine, idempotently:
# Debian packages, the cached Asterisk 22 chroot, and a Python environment in
# .venv built from the hashed lock files in requirements/.
#
# Usage: scripts/bootstrap.sh [main|dev]      (dev adds test and lint tools)
# Every step is skipped when already done, so running it again costs seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${1:-main}"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian packages the project itself uses outside the chroot.
# libspandsp-dev: the fax engine (cffi binding); libtiff: fax page files;
# ghostscript and LibreOffice Writer (no GUI): documents to fax pages.
# gnupg: Mail2Fax requests encrypted to a box's PGP key.
# bubblewrap: the jail LibreOffice and Ghostscript convert strangers' documents in.
# slapd: the embedded directory the phones search (scripts/run.sh starts its
# own on loopback, never Debian's); ldap-utils: ldapsearch for operators and
# the tests; libldap2-dev and libsasl2-dev: python-ldap is built against them.
DEB_PACKAGES="debootstrap libspandsp-dev libtiff-dev libtiff-tools ghostscript libreoffice-writer-nogui gnupg bubblewrap"
DEB_PACKAGES="$DEB_PACKAGES slapd ldap-utils libldap2-dev libsasl2-dev"
# Tests only: a real OpenSSH server on loopback for the SFTP fax archive, and
# Dovecot (IMAP, POP3 and LMTP, started by the tests on loopback) for Mail2Fax;
# Chromium for the browser tests of the web pages (Playwright drives it);
# HAProxy in front of two serve nodes for the ARI outbound websockets tests.
if [[ "$PROFILE" == dev ]]; then
  DEB_PACKAGES="$DEB_PACKAGES openssh-server openssh-client dovecot-imapd dovecot-pop3d dovecot-lmtpd openssl chromium haproxy"
fi
missing=""
for pkg in $DEB_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [[ -n "$missing" ]]; then
  if [[ $EUID -ne 0 ]]; then echo "missing Debian packages:$missing (run as root)" >&2; exit 1; fi
  say "installing Debian packages:$missing"
  apt-get update -qq
  # The servers among them (sshd, Dovecot, slapd) are started on loopback
  # by the tests and run.sh themselves: keep Debian from starting system-wide ones.
  added_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && added_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  if [[ -n "$added_policy" ]]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# The converters' own unprivileged user (kalliope_tel/sandbox.py), when we can make it.
if [[ $EUID -eq 0 ]] && ! getent passwd kt-convert >/dev/null; then
  say "adding the system user kt-convert (document converters run as it)"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kt-convert
fi

say "Asterisk lab chroot"
bash scripts/build-asterisk-chroot.sh

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "kalliope-tel needs Python 3.11 or newer ($PY is $("$PY" -V 2>&1))" >&2; exit 1
fi
if ! command -v uv >/dev/null 2>&1; then
  say "installing uv"
  "$PY" -m pip install -q uv
fi
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv"
  uv venv -q --python "$PY" .venv
fi
LOCK="requirements/$PROFILE.lock"
STAMP=".venv/.kalliope-$PROFILE-$(sha256sum "$LOCK" pyproject.toml | sha256sum | cut -c1-16)"
if [[ ! -f "$STAMP" ]]; then
  say "installing Python dependencies ($LOCK)"
  # Bytecode compiled now: where PYTHONDONTWRITEBYTECODE is set (these
  # machines), every process would otherwise compile each module it imports
  # from source, about 1.2 s before serve, the CLI or a test's subprocess
  # does anything.
  VIRTUAL_ENV=.venv uv pip sync -q --require-hashes --compile-bytecode "$LOCK"
  VIRTUAL_ENV=.venv uv pip install -q --no-deps -e .
  rm -f .venv/.kalliope-"$PROFILE"-*
  touch "$STAMP"
fi

# kalliope-tel's own bytecode, for the same reason (refreshed when a source is newer).
.venv/bin/python -m compileall -q -j 0 kalliope_tel agi ari_apps dialplan >/dev/null

# The fax engine's compiled binding (cached per user; ABI mode is the fallback).
say "fax engine binding: $(.venv/bin/python -c 'from kalliope_tel.fax import spandsp; print(spandsp.MODE)') mode"
