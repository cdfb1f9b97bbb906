"""Omnia: the console a provider (partner) uses to run its customers'
telephony: the Admin Console (customers, users, the log) and the Manager
(PBXs, extensions and licences, SIP trunks, numbers, groups of PBXs, the
Manager log)."""

from __future__ import annotations

from kalliope_tel.features.base import Feature

FEATURE = Feature(
    name="omnia",
    summary="Omnia Admin Console and Manager: customers, users with a second factor, PBXs, extensions, the logs",
    web="kalliope_tel.omnia.web:router",
    benches={"provision": "kalliope_tel.cli.bench_cmd:provision"},
    # A Plus extension's personal meeting room; a PBX's numbers, its trunks and groups.
    uses=("lam", "trunks", "groups"),
)
