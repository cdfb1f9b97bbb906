"""A deleted customer's (or PBX's) generated Asterisk files: found while its PBXs are
still in the store, removed once the deletion has committed."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk.apply import remove_files
from kalliope_tel.asterisk.targets import config_target
from kalliope_tel.config import Settings
from kalliope_tel.dialplan.generator import dialplan_file, pjsip_file
from kalliope_tel.tenancy.models import Pbx


def forget_generated(settings: Settings, session: Session, company_id: int) -> Callable[[], list[str]]:
    """A function that removes the files of the company's PBXs (call it
    after the commit: a rolled-back deletion keeps its files)."""
    return forget_pbx_files(settings, list(session.scalars(select(Pbx).where(Pbx.company_id == company_id))))


def forget_pbx_files(settings: Settings, pbxs: list[Pbx]) -> Callable[[], list[str]]:
    """The same for the PBXs given (Omnia Manager deletes them one by one)."""
    targets = [(pbx.slug, config_target(settings, pbx.asterisk_server).directory) for pbx in pbxs]

    def remove() -> list[str]:
        return [
            name
            for slug, directory in targets
            for name in remove_files(directory, [dialplan_file(slug), pjsip_file(slug)])
        ]

    return remove
