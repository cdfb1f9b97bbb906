"""Omnia: the console a provider (partner) uses to run its customers'
telephony. This part is the Admin Console: customers, users, the log."""

from __future__ import annotations

from kalliope_tel.features.base import Feature

FEATURE = Feature(
    name="omnia",
    summary="Omnia Admin Console: a partner's customers, company users with a second factor, the log",
    web="kalliope_tel.omnia.web:router",
)
