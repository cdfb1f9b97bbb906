"""Carrier SIP trunks and numbers: the trunks' PJSIP objects and inbound
contexts (shared by the PBXs a trunk serves), each PBX's number and
outbound contexts, the registration state in 'doctor'."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalliope_tel.features.base import DialplanFragment, Feature

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.checks import Check
    from kalliope_tel.container import Container
    from kalliope_tel.tenancy.models import Pbx


def _dialplan(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    from kalliope_tel.dialplan.trunks import dialplan_fragment

    return dialplan_fragment(session, pbx, device_template)


def _shared_files(session: Session, pbx: Pbx) -> dict[str, str]:
    from kalliope_tel.dialplan.trunks import shared_files

    return shared_files(session, pbx)


def _shared_file_names(session: Session) -> set[str]:
    from kalliope_tel.dialplan.trunks import shared_file_names

    return shared_file_names(session)


def _doctor(container: Container) -> list[Check]:
    from kalliope_tel.trunks.registration import doctor_checks

    return doctor_checks(container)


FEATURE = Feature(
    name="trunks",
    summary="Carrier SIP trunks (registration, digest auth) and the numbers and blocks they bring to PBXs",
    dialplan=_dialplan,
    shared_files=_shared_files,
    shared_file_names=_shared_file_names,
    doctor=_doctor,
)
