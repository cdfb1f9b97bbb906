"""Shared and numbering groups of PBXs: the group's contexts, shared by
its members, and each member's include of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.features.base import DialplanFragment, Feature

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.tenancy.models import Pbx


def _dialplan(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    from kalliope_tel.dialplan.groups import dialplan_fragment

    return dialplan_fragment(session, pbx, device_template)


def _shared_files(session: Session, pbx: Pbx) -> dict[str, str]:
    from kalliope_tel.dialplan.groups import shared_files

    return shared_files(session, pbx)


def _shared_file_names(session: Session) -> set[str]:
    from kalliope_tel.dialplan.groups import shared_file_names

    return shared_file_names(session)


FEATURE = Feature(
    name="groups",
    summary="Shared and numbering groups of PBXs: one numbering plan, ring groups and BLF across customers",
    dialplan=_dialplan,
    shared_files=_shared_files,
    shared_file_names=_shared_file_names,
)
