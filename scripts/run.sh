#!/usr/bin/env bash
# The main job: install what is missing, start (or reuse) the lab Asterisk,
# migrate the SQLite store and run 'kalliope-tel serve' against that Asterisk.
# Point it at your own Asterisk instead with KALLIOPE_ARI_URL/KALLIOPE_AMI_URL
# (see README) and it skips the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh main
KT=.venv/bin/kalliope-tel
if [[ -z "${KALLIOPE_ARI_URL:-}" ]]; then
  "$KT" lab up
fi
"$KT" db upgrade
if [[ -z "${KALLIOPE_DIRECTORY_URL:-}" ]]; then
  "$KT" directory up   # the embedded slapd the phones search (loopback, its own data directory)
fi
"$KT" doctor || true
cat >&2 <<NEXT

Next, in another terminal (from this directory):
  .venv/bin/kalliope-tel lab dial --from 101 600     # a lab phone calls the playback test
  .venv/bin/kalliope-tel lab status                  # Asterisk version and key modules
  .venv/bin/kalliope-tel doctor                      # every part reachable?
  .venv/bin/kalliope-tel config show                 # effective settings, secrets masked
  .venv/bin/kalliope-tel lab down                    # stop the lab Asterisk
Web panels on http://${KALLIOPE_HTTP_BIND:-127.0.0.1:8080}/ once a user has a password and a role:
  .venv/bin/kalliope-tel users add admin --email you@example.com
  .venv/bin/kalliope-tel users passwd admin && .venv/bin/kalliope-tel users roles admin admin
NEXT
exec "$KT" serve
