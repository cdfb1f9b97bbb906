"""The PMS links in ``serve``: one node at a time holds each PBX's link (a
lease on its ``pms_link`` row, renewed while it runs); a node that dies
leaves its lease to run out and another takes the link, reconnects and
resynchronises. A link disabled or removed, or a lease lost, stops its
runner."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog
from sqlalchemy import select

from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.db.leases import free, release, take
from kalliope_tel.features.base import Job, ServeContext
from kalliope_tel.pms.engine import LinkRunner
from kalliope_tel.pms.models import PmsLink
from kalliope_tel.tenancy.companies import serving_pbx_ids

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=12)
RENEW_EVERY = 3.0


class PmsService:
    def __init__(self, ctx: ServeContext) -> None:
        self.ctx = ctx
        self.runners: dict[int, tuple[LinkRunner, asyncio.Task[None]]] = {}
        settings = ctx.container.settings
        self.alive_every = settings.pms_alive_seconds
        self.dead_after = settings.pms_dead_seconds

    def _hold(self) -> set[int]:
        """Renew the leases this node holds, take the free ones; the PBXs whose link is ours."""
        now = utcnow()
        node = self.ctx.node
        # Read first: most installations have no PMS link, and a write
        # transaction every round would take SQLite's write lock for nothing
        # (other writers beside serve then wait, or fail a deferred upgrade).
        with transaction(self.ctx.container.sessions, read_only=True) as s:
            if s.scalar(select(PmsLink.id).where(PmsLink.enabled.is_(True)).limit(1)) is None:
                return set()
        with transaction(self.ctx.container.sessions) as s:
            # A suspended PBX's link is dropped like every path that acts for it.
            query = select(PmsLink).where(PmsLink.enabled.is_(True), PmsLink.pbx_id.in_(serving_pbx_ids()))
            query = query.where((PmsLink.claimed_by == node) | free(PmsLink, now))
            held = set()
            for link in s.scalars(query.with_for_update(skip_locked=True)):
                take(link, node, now + LEASE)
                held.add(link.pbx_id)
            return held

    def _release(self, pbx_ids: set[int]) -> None:
        with transaction(self.ctx.container.sessions) as s:
            for link in s.scalars(
                select(PmsLink).where(PmsLink.pbx_id.in_(pbx_ids), PmsLink.claimed_by == self.ctx.node)
            ):
                release(link)

    async def run(self) -> None:
        try:
            while True:
                held = await asyncio.to_thread(self._hold)
                for pbx_id in set(self.runners) - held:
                    await self._stop(pbx_id, "lease lost or link disabled")
                for pbx_id in held - set(self.runners):
                    runner = LinkRunner(self.ctx.container, self.ctx.node, pbx_id, self.alive_every, self.dead_after)
                    self.runners[pbx_id] = (runner, asyncio.create_task(runner.run(), name=f"pms-{pbx_id}"))
                    log.info("pms.link_taken", pbx_id=pbx_id, node=self.ctx.node)
                for pbx_id, (_, task) in list(self.runners.items()):
                    if task.done():  # a runner that raised: logged, started again next round
                        if not task.cancelled() and task.exception() is not None:
                            log.error("pms.runner_failed", pbx_id=pbx_id, error=repr(task.exception()))
                        del self.runners[pbx_id]
                await asyncio.sleep(RENEW_EVERY)
        finally:
            held = set(self.runners)
            for pbx_id in held:
                await self._stop(pbx_id, "serve stopping")
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._release, held)

    async def _stop(self, pbx_id: int, why: str) -> None:
        _, task = self.runners.pop(pbx_id)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        log.info("pms.link_left", pbx_id=pbx_id, reason=why)

    def status(self) -> dict[str, object]:
        return {str(pbx_id): vars(runner.figures) for pbx_id, (runner, _) in self.runners.items()}


def jobs(ctx: ServeContext) -> list[Job]:
    service = PmsService(ctx)
    ctx.parts["pms"] = service
    ctx.status["pms"] = service.status
    return [Job("pms-links", service.run)]
