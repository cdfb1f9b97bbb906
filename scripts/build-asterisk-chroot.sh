#!/usr/bin/env bash
# Build (once) and cache a Debian sid chroot holding Asterisk 22 LTS.
#
# Why a chroot: Asterisk is not packaged for bookworm, and sid's packages need a
# newer libc than the host has.  The chroot lives outside the checkout so CI and
# developers reuse it between runs; a fresh machine builds it in about a minute.
#
# Usage: scripts/build-asterisk-chroot.sh [ROOT]
#   ROOT defaults to $KALLIOPE_LAB_ROOT or /var/cache/kalliope-tel/asterisk-sid.
# Idempotent and safe to run concurrently (flock): a finished build leaves a
# stamp file and later calls return at once.
set -euo pipefail

ROOT="${1:-${KALLIOPE_LAB_ROOT:-/var/cache/kalliope-tel/asterisk-sid}}"
STAMP="$ROOT/.kalliope-lab-ready"
# Bump when the package list below changes, so cached chroots are completed.
STAMP_VERSION="3"
PACKAGES="asterisk asterisk-modules asterisk-core-sounds-en-wav"

mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_VERSION" ]]; then
  echo "lab chroot ready at $ROOT (cached)"
  exit 0
fi

if [[ $EUID -ne 0 ]]; then
  echo "building the Asterisk chroot needs root (debootstrap, chroot)" >&2
  exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

if [[ ! -x "$ROOT/usr/bin/apt-get" ]]; then
  echo "debootstrap sid into $ROOT (about 30 s)" >&2
  rm -rf "$ROOT"
  # No mirror argument: debootstrap's default is the one this machine reaches.
  debootstrap --variant=minbase --include=ca-certificates sid "$ROOT" >"$ROOT.debootstrap.log" 2>&1 \
    || { echo "debootstrap failed; see $ROOT.debootstrap.log" >&2; tail -20 "$ROOT.debootstrap.log" >&2; exit 1; }
fi

# Never let package scripts start services inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod +x "$ROOT/usr/sbin/policy-rc.d"

echo "installing Asterisk into the chroot" >&2
# The suite's Release file is a frozen snapshot that reads as expired.
chroot "$ROOT" sh -c "export DEBIAN_FRONTEND=noninteractive;
  apt-get -o Acquire::Check-Valid-Until=false update -qq &&
  apt-get install -y -qq --no-install-recommends $PACKAGES" >"$ROOT.apt.log" 2>&1 \
  || { echo "apt-get in the chroot failed; see $ROOT.apt.log" >&2; tail -20 "$ROOT.apt.log" >&2; exit 1; }

# Debian's package may start nothing (policy-rc.d), but make sure.
chroot "$ROOT" /usr/sbin/asterisk -V
echo "$STAMP_VERSION" >"$STAMP"
echo "lab chroot ready at $ROOT"
