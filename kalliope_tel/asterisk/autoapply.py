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
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from kalliope_tel.asterisk.apply import reload, remove_files, write_files
from kalliope_tel.asterisk.config_state import Claimed, claim, record_applied, record_error
from kalliope_tel.asterisk.realtime_apply import Objects, RealtimeState, objects_of, read_old
from kalliope_tel.asterisk.targets import config_target
from kalliope_tel.db.engine import transaction
from kalliope_tel.dialplan.generator import (
    GENERATED_DIR,
    GENERATED_HEADER,
    dialplan_file,
    pjsip_file,
    render,
    shared_file_names,
    writes_pjsip,
)
from kalliope_tel.tenancy.models import AsteriskServer, Pbx
from kalliope_tel.tenancy.services import get_asterisk_server, list_pbxs

if TYPE_CHECKING:
    from kalliope_tel.asterisk.ami.client import AmiClient
    from kalliope_tel.container import Container
    from kalliope_tel.features.base import AsteriskLink

log = structlog.get_logger(__name__)
# How often each node looks at the serials (one small query): a change is
# live about this much after its commit, plus the write and reload.
APPLY_EVERY = 0.5
AMI_WAIT = 10.0


@dataclass
class Applied:
    """What this node applied to one Asterisk, for ``serve``'s status."""

    serials: dict[int, int] = field(default_factory=dict)  # PBX id -> config_serial applied
    owed_reload: set[str] = field(default_factory=set)  # files written, their reload not yet done
    files_written: int = 0
    reloads: int = 0
    last_error: str = ""
    realtime: RealtimeState | None = None  # pjsip_accounts = realtime

    def as_dict(self) -> dict[str, Any]:
        realtime = self.realtime
        return {
            "pbxs": len(self.serials),
            "files_written": self.files_written,
            "reloads": self.reloads,
            "pjsip_accounts": "files" if realtime is None else "realtime",
            "objects_expired": realtime.expired if realtime else 0,
            "live_dialplan_actions": realtime.live_actions if realtime else 0,
            "owed_reload": sorted(self.owed_reload),
            "last_error": self.last_error,
        }


def _generated(path: Path) -> bool:
    """Written by the generator (its header): another file of that name (an
    operator's, a test's phone) is never removed."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(GENERATED_HEADER)) == GENERATED_HEADER
    except OSError:
        return False


class ConfigApplier:
    def __init__(self, container: Container, link: AsteriskLink, node: str = "") -> None:
        self.container = container
        self.link = link
        self.node = node or container.settings.node_name
        self.applied = Applied()
        self.accounts = container.settings.pjsip_accounts
        if self.accounts == "realtime":
            self.applied.realtime = RealtimeState()
        self.pending: dict[int, int] = {}  # PBX id -> serial on its way (written, or to write), not yet reloaded

    def _record(self, serials: dict[int, int] | None = None, error: str = "") -> None:
        with transaction(self.container.sessions) as session:
            if error:
                record_error(session, sorted(self.pending), error)
            elif serials:
                record_applied(session, serials)

    def due(self) -> Claimed:
        """The PBXs on this Asterisk whose serial moved since this node applied
        them, and whose apply lease this node took (another node's are left to it)."""
        # Two columns, not the PBX objects: this runs every half second
        # whatever the number of PBXs.
        query = select(Pbx.id, Pbx.config_serial, AsteriskServer.name).outerjoin(
            AsteriskServer, AsteriskServer.id == Pbx.asterisk_server_id
        )
        with transaction(self.container.sessions, read_only=True) as session:
            wanted = {
                pbx_id: serial
                for pbx_id, serial, server in session.execute(query)
                if (server or "") == self.link.name and self.applied.serials.get(pbx_id) != serial
            }
        if not wanted:
            return Claimed({}, frozenset())
        with transaction(self.container.sessions) as session:
            return claim(session, wanted, self.node)

    def render(self, pbx_ids: set[int]) -> tuple[Path, dict[str, str], dict[str, int], dict[int, int]]:
        """The files of these PBXs, which PBX each file is of, and the serial
        each PBX had in the snapshot rendered (a change may have come since
        the serials were read: what is recorded is what was written)."""
        files: dict[str, str] = {}
        owners: dict[str, int] = {}
        serials: dict[int, int] = {}
        directory: Path | None = None
        objects: dict[int, Objects] = {}
        with transaction(self.container.sessions, read_only=True, snapshot=True) as session:
            pbxs = list_pbxs(session)
            for pbx in pbxs:
                if pbx.id not in pbx_ids:
                    continue
                if self.applied.realtime is not None:
                    objects[pbx.id] = objects_of(session, pbx)
                serials[pbx.id] = pbx.config_serial
                target = config_target(self.container.settings, pbx.asterisk_server)
                directory = target.directory
                rendered = render(session, pbx, target.device_template, self.container.features, self.accounts).files
                files.update(rendered)
                owners.update(dict.fromkeys(rendered, pbx.id))
            if self.applied.realtime is not None:
                self.applied.realtime.note(objects, {p.id for p in pbxs})
        if directory is None:  # every one of them removed meanwhile
            directory = config_target(self.container.settings, None).directory
        return directory, files, owners, serials

    def files_of(self, pbx_ids: frozenset[int]) -> list[str]:
        with transaction(self.container.sessions, read_only=True) as session:
            slugs = [p.slug for p in list_pbxs(session) if p.id in pbx_ids]
        return [name for slug in slugs for name in (dialplan_file(slug), pjsip_file(slug))]

    def stale(self) -> tuple[list[str], dict[str, str]]:
        """This Asterisk's generated files of PBXs no longer in the store (a
        PBX deleted, from any node or the CLI), and PJSIP files no PBX gets
        any more (realtime accounts): removed; what they held, for realtime's
        removal in place."""
        with transaction(self.container.sessions, read_only=True) as session:
            pbxs = list_pbxs(session)
            server = next((p.asterisk_server for p in pbxs if p.asterisk_name == self.link.name), None)
            if self.link.name and server is None:
                server = get_asterisk_server(session, self.link.name)
            slugs = {p.slug for p in pbxs if p.asterisk_name == self.link.name}
            shared = shared_file_names(session, self.container.features)
        if self.applied.realtime is not None:  # a deleted PBX's accounts leave the caches
            self.applied.realtime.note({}, {p.id for p in pbxs})
        directory = config_target(self.container.settings, server).directory
        generated = directory / GENERATED_DIR
        pjsip_stays = writes_pjsip(self.container.features, self.accounts)
        live = shared | {dialplan_file(slug) for slug in slugs}
        live |= {pjsip_file(slug) for slug in slugs} if pjsip_stays else set()
        names = sorted(
            f"{GENERATED_DIR}/{path.name}"
            for pattern in ("extensions_*.conf", "pjsip_*.conf")
            for path in (generated.glob(pattern) if generated.is_dir() else [])
            if f"{GENERATED_DIR}/{path.name}" not in live and _generated(path)
        )
        old_texts = read_old(directory, names) if self.applied.realtime is not None else {}
        return remove_files(directory, names), old_texts

    async def apply_once(self) -> list[str]:
        """Apply what moved; return the files whose content changed."""
        claimed = await asyncio.to_thread(self.due)
        due = claimed.serials
        self.pending.update(due)
        changed: list[str] = []
        removed, old_removed = await asyncio.to_thread(self.stale)
        if removed:
            gone_live: set[str] = set()
            if self.applied.realtime is not None and old_removed:
                gone = {name: (text, "") for name, text in old_removed.items()}
                gone_live = await self.applied.realtime.change_dialplans(await self._ami(), gone)
            self.applied.owed_reload.update(name for name in removed if name not in gone_live)
            log.info("asterisk.config_removed", asterisk=self.link.label, files=removed)
        if due:
            directory, files, owners, rendered = await asyncio.to_thread(self.render, set(due))
            due.update(rendered)  # what was rendered, which is what is recorded
            self.pending.update(rendered)
            old_texts = await asyncio.to_thread(read_old, directory, files) if self.applied.realtime else {}
            changed = await asyncio.to_thread(write_files, directory, files)
            self.applied.files_written += len(changed)
            live: set[str] = set()
            if self.applied.realtime is not None and changed:
                moved = {name: (old_texts.get(name, ""), files[name]) for name in changed}
                live = await self.applied.realtime.change_dialplans(await self._ami(), moved)
            self.applied.owed_reload.update(name for name in changed if name not in live)
            if claimed.orphaned:  # another node died between writing and reloading them
                self.applied.owed_reload.update(self.files_of(claimed.orphaned))
            self.applied.serials.update(due)
            if changed:
                # Which PBX at which serial: two nodes never write the same one (the lease).
                serials = {str(k): due[k] for k in sorted({owners[name] for name in changed})}
                log.info("asterisk.config_written", asterisk=self.link.label, files=changed, serials=serials)
        if self.applied.owed_reload:
            ami = await self._ami()
            owed = sorted(self.applied.owed_reload)
            outputs = await reload(ami, owed)
            self.applied.owed_reload.difference_update(owed)
            self.applied.reloads += len(outputs)
            log.info("asterisk.config_reloaded", asterisk=self.link.label, files=owed, commands=len(outputs))
        realtime = self.applied.realtime
        if realtime is not None and (realtime.owed or not realtime.caches_fresh):
            expired = await realtime.expire(await self._ami())
            if expired:
                log.info("asterisk.realtime_expired", asterisk=self.link.label, objects=expired)
        if self.pending:  # written and reloaded: the pages say so
            done, self.pending = self.pending, {}
            await asyncio.to_thread(self._record, done)
        return changed

    async def _ami(self) -> AmiClient:
        ami = self.link.ami
        if ami is None:
            raise RuntimeError("no AMI connection to reload through")
        await asyncio.wait_for(ami.connected.wait(), AMI_WAIT)
        return ami

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
            # Jittered: nodes started together would otherwise poll in step
            # for ever, and the one a hair ahead would claim every change
            # (CI: one node applied all of them, the other none).
            await asyncio.sleep(APPLY_EVERY * random.uniform(0.75, 1.25))  # noqa: S311 - spreading, not crypto
