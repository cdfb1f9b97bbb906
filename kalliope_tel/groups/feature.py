"""Shared and numbering groups of PBXs: the group's contexts, shared by
its members, and each member's include of them."""

from __future__ import annotations

from kalliope_tel.features.base import Feature, lazy

FEATURE = Feature(
    name="groups",
    summary="Shared and numbering groups of PBXs: one numbering plan, ring groups and BLF across customers",
    dialplan=lazy("kalliope_tel.dialplan.groups:dialplan_fragment"),
    shared_files=lazy("kalliope_tel.dialplan.groups:shared_files"),
    shared_file_names=lazy("kalliope_tel.dialplan.groups:shared_file_names"),
)
