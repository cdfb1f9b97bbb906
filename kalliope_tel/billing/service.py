"""Billing in ``serve``: each Asterisk link's CDRs recorded as calls end
(AMI ``Cdr`` events), and its CDR file reconciled at start and then
periodically (calls that ended while no node listened, or an event lost
with a dropped AMI connection). Both paths write through ``records.record``;
the store keeps one record per CDR however many nodes and paths offer it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import OperationalError

from kalliope_tel.backoff import Backoff, Retry
from kalliope_tel.billing.cdrfile import reconcile
from kalliope_tel.billing.feature import FEATURE
from kalliope_tel.billing.records import BadCdr, Cdr, Rater, RoomCallHook, from_ami, is_ours, parse, record
from kalliope_tel.db.engine import store_busy, transaction
from kalliope_tel.features.base import AsteriskLink, Job, ServeContext
from kalliope_tel.features.registry import partner_function, partner_runs

if TYPE_CHECKING:
    from kalliope_tel.asterisk.ami.protocol import AmiMessage
    from kalliope_tel.container import Container

log = structlog.get_logger(__name__)

# A store another process holds past busy_timeout: try the CDR again, 1 s then doubling to 30 s.
STORE_BUSY = Backoff(1.0, 30.0, jitter=0.2)


@dataclass
class BillingFigures:
    from_ami: int = 0
    from_file: int = 0
    duplicates: int = 0
    refused: int = 0
    cdr_file_offset: dict[str, int] = field(default_factory=dict)  # by link: how far the file is read

    def as_dict(self) -> dict[str, Any]:
        return {
            "recorded_from_ami": self.from_ami,
            "recorded_from_file": self.from_file,
            "already_recorded": self.duplicates,
            "refused": self.refused,
            "cdr_file_offset": dict(self.cdr_file_offset),
        }


def room_call_hook(container: Container) -> RoomCallHook | None:
    """The PMS link's posting, owed with each priced room call, when it runs."""
    if not partner_runs(container, FEATURE, "pms"):
        return None
    hook: RoomCallHook = partner_function(FEATURE, "pms", "owe_posting")
    return hook


class BillingService:
    def __init__(self, ctx: ServeContext) -> None:
        self.ctx = ctx
        self.rater = Rater(room_call_hook(ctx.container))
        self.figures = BillingFigures()
        self.queues: dict[str, asyncio.Queue[Cdr]] = {}

    def jobs(self) -> list[Job]:
        out = []
        for link in self.ctx.links:
            out.append(Job(f"billing-ami@{link.label}", lambda link=link: self._record_events(link)))  # type: ignore[misc]
            if link.endpoints.cdr_file:
                out.append(Job(f"billing-cdr-file@{link.label}", lambda link=link: self._reconcile_loop(link)))  # type: ignore[misc]
        return out

    # -- AMI: as calls end ----------------------------------------------------
    def _queue(self, link: AsteriskLink) -> asyncio.Queue[Cdr]:
        queue = self.queues.get(link.label)
        if queue is None:
            queue = self.queues[link.label] = asyncio.Queue()
            if link.ami is not None:

                async def on_cdr(message: AmiMessage) -> None:
                    # Parse here (cheap, keeps order); the store is written by
                    # the job, so a slow database never holds AMI's event queue.
                    fields = from_ami(message.get)
                    if not is_ours(fields):
                        return
                    try:
                        queue.put_nowait(parse(fields))
                    except BadCdr as exc:
                        self._refused(link, exc)

                link.ami.on("Cdr", on_cdr)
        return queue

    async def _record_events(self, link: AsteriskLink) -> None:
        queue = self._queue(link)
        retry = Retry(STORE_BUSY)
        while True:
            cdr = await queue.get()
            while True:  # the CDR stays ours until it is written: a busy store delays it, never drops it
                try:
                    written = await asyncio.to_thread(self._record, link.name, cdr)
                    break
                except BadCdr as exc:
                    self._refused(link, exc)
                    written = None
                    break
                except OperationalError as exc:
                    if not store_busy(exc):
                        raise
                    delay = retry.next()
                    log.warning("billing.store_busy", server=link.label, uniqueid=cdr.uniqueid, retry_in=delay)
                    await asyncio.sleep(delay)
            retry.reset()
            if written is None:
                continue
            if written:
                self.figures.from_ami += 1
                log.info("billing.call_recorded", server=link.label, uniqueid=cdr.uniqueid, source="ami")
            else:
                self.figures.duplicates += 1

    def _refused(self, link: AsteriskLink, exc: BadCdr) -> None:
        self.figures.refused += 1
        log.warning("billing.cdr_refused", server=link.label, source="ami", reason=str(exc))

    def _record(self, server: str, cdr: Cdr) -> bool:
        with transaction(self.ctx.container.sessions) as session:
            return record(session, server, cdr, source="ami", node=self.ctx.node, rater=self.rater)

    # -- the durable file -------------------------------------------------------
    async def _reconcile_loop(self, link: AsteriskLink) -> None:
        path = Path(link.endpoints.cdr_file or "")
        every = self.ctx.container.settings.billing_reconcile_seconds
        while True:
            done = await asyncio.to_thread(
                reconcile, self.ctx.container.sessions, link.name, path, node=self.ctx.node, rater=self.rater
            )
            self.figures.from_file += done.recorded
            self.figures.refused += len(done.refused)
            self.figures.cdr_file_offset[link.label] = done.offset
            if done.recorded:
                log.info("billing.reconciled", server=link.label, recorded=done.recorded, lines=done.lines)
            await asyncio.sleep(every)


def jobs(ctx: ServeContext) -> list[Job]:
    service = BillingService(ctx)
    ctx.parts["billing"] = service
    ctx.status["billing"] = service.figures.as_dict
    return service.jobs()
