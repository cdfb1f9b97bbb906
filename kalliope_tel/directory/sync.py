"""Keeping the directory in step with the store.

Each round (every ``EVERY`` seconds) reads a token per PBX: its
configuration serial (extensions, rooms, templates and the hotel's settings
move it) and, where the hotel runs, its stays (a guest's name appears at
check-in). For each PBX whose token moved, the wanted entries are computed
(``entries``), what LDAP holds is read, and the difference is written
(``ldap_tree.plan``): reading LDAP each time keeps two nodes, or an operator's
edit, from leaving drift. A deleted PBX's subtree goes. When the directory
cannot be reached (slapd stopped), nothing is lost: the store is the
truth; the round retries with the one backoff and, once back, resyncs every
PBX in full.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from kalliope_tel.backoff import Backoff, Retry
from kalliope_tel.db.engine import transaction
from kalliope_tel.directory import ldap_tree
from kalliope_tel.directory.entries import RoomsOf, directory_of
from kalliope_tel.directory.link import Link, Target
from kalliope_tel.directory.slapd import DirectoryError, Slapd, phones_password
from kalliope_tel.tenancy.models import Pbx

if TYPE_CHECKING:
    from kalliope_tel.container import Container

log = structlog.get_logger(__name__)
EVERY = 0.5
BACKOFF = Backoff(first=1.0, cap=30.0, jitter=0.2)


def target_of(container: Container) -> Target | None:
    """The directory to write: the configured one, or the embedded slapd (None: not set up)."""
    s = container.settings
    if s.directory_url:
        secret = s.directory_phones_secret.get_secret_value()
        if not s.directory_admin_dn or not secret:
            raise DirectoryError("directory_url is set: set directory_admin_dn, its password, directory_phones_secret")
        password = s.directory_admin_password.get_secret_value()
        return Target(s.directory_url, s.directory_base_dn, s.directory_admin_dn, password, secret)
    state = Slapd(embedded_dir(container)).read_state()
    if state is None:
        return None
    return Target(state.url, state.base_dn, state.admin_dn, state.admin_password, state.phones_secret)


def embedded_dir(container: Container) -> Any:
    return container.settings.directory_dir or container.settings.data_dir / "directory"


@dataclass
class Figures:
    rounds: int = 0
    written: dict[str, int] = field(default_factory=lambda: {"added": 0, "changed": 0, "removed": 0})
    last_error: str = ""
    last_sync_at: float = 0.0


class DirectorySync:
    def __init__(
        self, container: Container, rooms_of: RoomsOf | None, tokens_of: Callable[[Any], dict[int, str]] | None
    ):
        self.container = container
        self.rooms_of = rooms_of
        self.tokens_of = tokens_of
        self.link: Link | None = None
        self.done: dict[int, str] = {}  # PBX id -> token written
        self.slugs: dict[int, str] = {}
        self.figures = Figures()

    def _tokens(self) -> dict[int, tuple[str, str]]:
        """PBX id -> (slug, token): its serial and stays, and its group's
        (a member's phones see the other members' entries)."""
        with transaction(self.container.sessions, read_only=True) as session:
            stays = self.tokens_of(session) if self.tokens_of is not None else {}
            rows = list(session.execute(select(Pbx.id, Pbx.slug, Pbx.config_serial, Pbx.group_id)))
        own = {pid: f"{serial}|{stays.get(pid, '')}" for pid, _slug, serial, _group in rows}
        groups: dict[int, list[str]] = {}
        for pid, _slug, _serial, group in rows:
            if group is not None:
                groups.setdefault(group, []).append(own[pid])
        return {
            pid: (slug, own[pid] + ("|" + ",".join(sorted(groups[group])) if group is not None else ""))
            for pid, slug, _serial, group in rows
        }

    def _connect(self) -> Link | None:
        target = target_of(self.container)
        if target is None:
            return None
        link = Link(target)
        link.connect()
        link.ensure_base()
        self.done.clear()  # (re)connected: every PBX in full
        return link

    def sync_pbx(self, link: Link, pbx_id: int) -> ldap_tree.Plan:
        with transaction(self.container.sessions, read_only=True) as session:
            pbx = session.get(Pbx, pbx_id)
            if pbx is None:
                return ldap_tree.Plan()
            slug = pbx.slug
            wanted = ldap_tree.published(directory_of(session, pbx, self.rooms_of))
        link.ensure_pbx(slug, phones_password(link.target.phones_secret, slug))
        plan = ldap_tree.plan(link.held(slug), wanted)
        if plan:
            link.apply(slug, plan)
            for key, value in plan.counts().items():
                self.figures.written[key] += value
        return plan

    def round(self) -> dict[str, dict[str, int]]:
        """One pass; what it changed per PBX slug."""
        if self.link is None:
            self.link = self._connect()
            if self.link is None:
                return {}
        link = self.link
        tokens = self._tokens()
        changed: dict[str, dict[str, int]] = {}
        for pbx_id, (slug, token) in tokens.items():
            if self.done.get(pbx_id) == token:
                continue
            plan = self.sync_pbx(link, pbx_id)
            self.done[pbx_id], self.slugs[pbx_id] = token, slug
            if plan:
                changed[slug] = plan.counts()
        live = {slug for slug, _ in tokens.values()}
        for pbx_id in sorted(set(self.done) - set(tokens)):  # deleted since the last round
            self.done.pop(pbx_id)
            gone = self.slugs.pop(pbx_id, "")
            if gone and gone not in live:
                changed[gone] = {"removed": link.remove_pbx(gone)}
        self.figures.rounds += 1
        self.figures.last_sync_at = time.time()
        return changed

    def resync(self) -> dict[str, Any]:
        """Every PBX in full, and subtrees of PBXs no longer in the store removed."""
        self.close()
        changed = self.round()
        if self.link is None:
            raise DirectoryError("no directory: run 'kalliope-tel directory up' or set directory_url")
        live = set(self._tokens_slugs())
        for slug in self.link.pbx_slugs():
            if slug not in live:
                changed[slug] = {"removed": self.link.remove_pbx(slug)}
        return changed

    def _tokens_slugs(self) -> list[str]:
        return [slug for slug, _ in self._tokens().values()]

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
        self.link = None
        self.done.clear()

    async def run(self) -> None:
        retry = Retry(BACKOFF)
        while True:
            try:
                changed = await asyncio.to_thread(self.round)
                if changed:
                    log.info("directory.synced", pbxs=changed)
                if self.figures.last_error:
                    log.info("directory.back")
                self.figures.last_error = ""
                retry.reset()
                await asyncio.sleep(EVERY)
            except DirectoryError as exc:  # slapd stopped, refused: the store stays the truth
                if str(exc) != self.figures.last_error:
                    log.warning("directory.unreachable", error=str(exc))
                self.figures.last_error = str(exc)
                self.close()
                await asyncio.sleep(retry.next())
