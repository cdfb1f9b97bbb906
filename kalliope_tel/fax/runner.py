"""The fax service's background work in serve: the sender (one per Asterisk
link) and the deliveries (one per node). Engines are passed in: no ARI here.

The sender claims due jobs within the limits, places each attempt, records
its outcome, hangs up attempts cancelled meanwhile, and at start and every
so often closes attempts whose node died (their calls hung up first), so a
killed node's fax is retried, never sent by two nodes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from kalliope_tel.fax.jobs import AttemptResult, SendClaim
from kalliope_tel.fax.service import FaxService

log = structlog.get_logger(__name__)
RECOVER_EVERY = 30.0  # seconds between looks for attempts of dead nodes


class SendEngine(Protocol):
    @property
    def room(self) -> int: ...

    async def send(self, claim: SendClaim, on_phase_b: Callable[[], None]) -> AttemptResult: ...

    async def hangup(self, call_id: str) -> None: ...


class FaxSender:
    def __init__(self, service: FaxService, engine: SendEngine, *, asterisk: str | None, tick: float) -> None:
        """``asterisk``: claim only for PBXs bound to that Asterisk ("" the default)."""
        self.service = service
        self.engine = engine
        self.asterisk = asterisk
        self.tick = tick
        self.running: dict[int, tuple[SendClaim, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._marks: set[asyncio.Task[None]] = set()

    async def run(self, connected: asyncio.Event | None = None) -> None:
        if connected is not None:
            await connected.wait()  # recovery hangs up calls: Asterisk must be there
        await self._recover(self.service.node, "serve stopped during the call (node restarted)")
        last_recovery = time.monotonic()
        try:
            while True:
                if connected is None or connected.is_set():
                    await self._claim()
                    await self._hang_up_cancelled()
                if time.monotonic() - last_recovery > RECOVER_EVERY:
                    await self._recover(None, "the node carrying the call stopped")
                    await self.service.forget_dead_slots()
                    last_recovery = time.monotonic()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.tick)
        finally:
            # Stopping: attempts in progress are left to recovery at the next
            # start (their calls end with this node's media).
            for _claim, task in self.running.values():
                task.cancel()

    async def _claim(self) -> None:
        room = self.engine.room
        if room <= 0:
            return
        for claim in await self.service.claim(self.asterisk, room):
            task = asyncio.create_task(self._attempt(claim), name=f"fax-job-{claim.job_id}")
            self.running[claim.job_id] = (claim, task)

    async def _attempt(self, claim: SendClaim) -> None:
        log.info("fax.sending", job=claim.job_id, attempt=claim.attempt, number=claim.number, instance=claim.instance)

        def phase_b() -> None:
            task = asyncio.get_running_loop().create_task(self.service.sending(claim))
            self._marks.add(task)
            task.add_done_callback(self._marks.discard)

        try:
            try:
                result = await self.engine.send(claim, phase_b)
            except Exception as exc:
                log.exception("fax.attempt_crashed", job=claim.job_id)
                result = AttemptResult(False, f"internal error: {type(exc).__name__}")
            await self.service.attempt_done(claim, result)
        finally:
            self.running.pop(claim.job_id, None)
            self._wake.set()  # a line is free: claim now, not at the next tick

    async def _hang_up_cancelled(self) -> None:
        if not self.running:
            return
        for job_id in await self.service.cancelled(list(self.running)):
            claim, _task = self.running[job_id]
            log.info("fax.cancel_hangup", job=job_id, call=claim.call_id)
            await self.engine.hangup(claim.call_id)

    async def _recover(self, node: str | None, why: str) -> None:
        for item in await self.service.abandoned(node):
            if item.job_id in self.running:
                continue  # ours and alive
            if item.call_id:
                await self.engine.hangup(item.call_id)
            await self.service.abandon(item, why)


async def deliveries_loop(service: FaxService, tick: float) -> None:
    """Mails and archive copies owed, until done (retries with backoff)."""
    while True:
        done = await service.deliver_due()
        if not done:
            await service.register_pending()  # receptions the database missed (and at start, the last run's)
            await asyncio.sleep(tick)
