"""Configuration changes reach Asterisk on their own: no one runs
``asterisk apply`` after adding a room in the browser.

Each ``serve`` node keeps, per Asterisk it drives, the ``config_serial`` of
every PBX it last applied. Every ``APPLY_EVERY`` seconds it reads the serials
(one small query); for the PBXs that moved it renders their files (exactly
what ``asterisk apply`` writes), replaces those whose content changed and
reloads, through its AMI connection, only the modules those files feed.
Several nodes on one Asterisk render the same files: the first writes and
reloads, the others find nothing changed. A reload that fails (AMI down) is
owed and retried; the files already written stay.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from kalliope_tel.asterisk.apply import reload, write_files
from kalliope_tel.asterisk.targets import config_target
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.dialplan.generator import render
from kalliope_tel.tenancy.models import ConfigState, Pbx
from kalliope_tel.tenancy.services import list_pbxs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.container import Container
    from kalliope_tel.features.base import AsteriskLink

log = structlog.get_logger(__name__)
APPLY_EVERY = 2.0
AMI_WAIT = 10.0


@dataclass
class Applied:
    """What this node applied to one Asterisk, for ``serve``'s status."""

    serials: dict[int, int] = field(default_factory=dict)  # PBX id -> config_serial applied
    owed_reload: set[str] = field(default_factory=set)  # files written, their reload not yet done
    files_written: int = 0
    reloads: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "pbxs": len(self.serials),
            "files_written": self.files_written,
            "reloads": self.reloads,
            "owed_reload": sorted(self.owed_reload),
            "last_error": self.last_error,
        }


def record_applied(session: Session, serials: dict[int, int]) -> None:
    """The PBXs' configuration up to these serials is written and reloaded."""
    now = utcnow()
    for pbx_id, serial in serials.items():
        if session.get(Pbx, pbx_id) is None:
            continue  # removed meanwhile
        state = session.get(ConfigState, pbx_id) or ConfigState(pbx_id=pbx_id)
        # Another node on the same Asterisk may have recorded a later serial.
        state.applied_serial = max(state.applied_serial or 0, serial)
        state.applied_at, state.error, state.error_at = now, "", None
        session.add(state)


def record_error(session: Session, pbx_ids: list[int], error: str) -> None:
    for pbx_id in pbx_ids:
        if session.get(Pbx, pbx_id) is None:
            continue
        state = session.get(ConfigState, pbx_id) or ConfigState(pbx_id=pbx_id, applied_serial=0)
        state.error, state.error_at = error[:300], utcnow()
        session.add(state)


def state_of(session: Session, pbx: Pbx) -> dict[str, Any]:
    """For the administration pages: applied, applying (a change not yet
    through), or failing (with the reason)."""
    state = session.get(ConfigState, pbx.id)
    applied = state.applied_serial if state else 0
    error = state.error if state else ""
    word = "applied" if applied >= pbx.config_serial else ("failing" if error else "applying")
    return {
        "state": word,
        "serial": pbx.config_serial,
        "applied_serial": applied,
        "applied_at": state.applied_at.isoformat(timespec="seconds") if state and state.applied_at else None,
        "error": error if word == "failing" else "",
    }


class ConfigApplier:
    def __init__(self, container: Container, link: AsteriskLink) -> None:
        self.container = container
        self.link = link
        self.applied = Applied()
        self.pending: dict[int, int] = {}  # PBX id -> serial on its way (written, or to write), not yet reloaded

    def _record(self, serials: dict[int, int] | None = None, error: str = "") -> None:
        with transaction(self.container.sessions) as session:
            if error:
                record_error(session, sorted(self.pending), error)
            elif serials:
                record_applied(session, serials)

    def due(self) -> dict[int, int]:
        """The PBXs on this Asterisk whose serial moved since this node applied them."""
        with transaction(self.container.sessions, read_only=True) as session:
            return {
                pbx.id: pbx.config_serial
                for pbx in list_pbxs(session)
                if pbx.asterisk_name == self.link.name and self.applied.serials.get(pbx.id) != pbx.config_serial
            }

    def render(self, pbx_ids: set[int]) -> tuple[Path, dict[str, str]]:
        files: dict[str, str] = {}
        directory: Path | None = None
        with transaction(self.container.sessions, read_only=True) as session:
            for pbx in list_pbxs(session):
                if pbx.id not in pbx_ids:
                    continue
                target = config_target(self.container.settings, pbx.asterisk_server)
                directory = target.directory
                files.update(render(session, pbx, target.device_template, self.container.features).files)
        if directory is None:  # every one of them removed meanwhile
            directory = config_target(self.container.settings, None).directory
        return directory, files

    async def apply_once(self) -> list[str]:
        """Apply what moved; return the files whose content changed."""
        due = await asyncio.to_thread(self.due)
        self.pending.update(due)
        changed: list[str] = []
        if due:
            directory, files = await asyncio.to_thread(self.render, set(due))
            changed = await asyncio.to_thread(write_files, directory, files)
            self.applied.files_written += len(changed)
            self.applied.owed_reload.update(changed)
            self.applied.serials.update(due)
            if changed:
                log.info("asterisk.config_written", asterisk=self.link.label, files=changed, pbxs=len(due))
        if self.applied.owed_reload:
            ami = self.link.ami
            if ami is None:
                raise RuntimeError("no AMI connection to reload through")
            await asyncio.wait_for(ami.connected.wait(), AMI_WAIT)
            owed = sorted(self.applied.owed_reload)
            outputs = await reload(ami, owed)
            self.applied.owed_reload.difference_update(owed)
            self.applied.reloads += len(outputs)
            log.info("asterisk.config_reloaded", asterisk=self.link.label, files=owed, commands=len(outputs))
        if self.pending:  # written and reloaded: the pages say so
            done, self.pending = self.pending, {}
            await asyncio.to_thread(self._record, done)
        return changed

    async def run(self) -> None:
        while True:
            try:
                await self.apply_once()
                self.applied.last_error = ""
            except Exception as exc:  # reported and retried next round, not a crash loop
                error = f"{type(exc).__name__}: {exc}"[:300]
                if error != self.applied.last_error:  # once per new error, not every round
                    log.warning("asterisk.config_apply_failed", asterisk=self.link.label, error=error)
                    with contextlib.suppress(Exception):  # the store may be what fails
                        await asyncio.to_thread(self._record, None, error)
                self.applied.last_error = error
            await asyncio.sleep(APPLY_EVERY)
