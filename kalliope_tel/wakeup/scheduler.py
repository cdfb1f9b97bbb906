"""The wake-up scheduler run by ``serve``: claim due alarms, start attempts,
and fail attempts whose node died (watchdog). No ARI here: the engine that
places calls is passed in (``CallEngine``)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import structlog
from sqlalchemy.exc import SQLAlchemyError

from kalliope_tel.db.engine import transaction
from kalliope_tel.tenancy.services import list_pbxs
from kalliope_tel.wakeup.models import AttemptOutcome
from kalliope_tel.wakeup.services import (
    Claim,
    channel_of,
    claim_due,
    complete_attempt,
    due_pbxs,
    due_suspended,
    expired_attempts,
    skip_suspended,
)

if TYPE_CHECKING:
    from kalliope_tel.container import Container

log = structlog.get_logger(__name__)
T = TypeVar("T")
# Consecutive failed ticks (not database outages) after which the scheduler ends.
MAX_FAILED_TICKS = 3
# Seconds between looks for attempts whose lease ran out (leases are minutes
# long). Not at every tick: the scheduler ticks at every call's end (poke),
# and that look was a transaction per call (bench wakeup).
RECOVER_EVERY = 5.0
# After a call ends, how long the scheduler waits for others to end before
# it claims (see run). Each line waits this long once per call it carries,
# and behind a cap the waits add up along the queue: bench wakeup on
# PostgreSQL, runs interleaved in the same minutes: p99 lateness 0.90-0.97 s
# at 0.05, 0.61-0.65 s at 0.03, 0.52-0.55 s at 0.02; CPU per alarm 2.3-3.8,
# 3.3-4.0 and 3.9-4.2 ms (smaller claims, and calls that start in smaller
# groups end in smaller groups: more transactions, 370 against 491 for
# 1,000 alarms at 0.05 and 0.03).
CLAIM_GATHER_SECONDS = 0.03


class CallEngine(Protocol):
    @property
    def active(self) -> int: ...

    async def start(self, claim: Claim) -> None: ...

    async def hangup(self, channel_id: str) -> None: ...


class WakeupScheduler:
    def __init__(
        self, container: Container, engine: CallEngine, node: str, *, tick: float = 1.0, asterisk: str | None = None
    ) -> None:
        """``asterisk``: claim only for PBXs bound to that Asterisk ("" the
        default one); None claims for every PBX (one Asterisk for all)."""
        self.container = container
        self.asterisk = asterisk
        self.engine = engine
        self.node = node
        self.tick = tick
        self.claimed = 0
        self._poke = asyncio.Event()
        self._recovered_own = False
        # CPU seconds of the scheduler's own work (its database transactions,
        # measured in the threads that run them): bench wakeup reports it
        # apart from the engine's.
        self.cpu_seconds = 0.0

    def _timed(self, work: Callable[[], T]) -> T:
        start = time.thread_time()
        try:
            return work()
        finally:
            self.cpu_seconds += time.thread_time() - start

    def poke(self) -> None:
        """A line is free (an attempt ended): claim now rather than at the next tick.

        With a cap, waiting for the tick left every line idle for up to a tick
        per call, and those gaps added up along the queue (p99 lateness 6.3 s
        for 1,000 alarms behind a cap of 50; see bench wakeup).
        """
        self._poke.set()

    def _claim(self) -> list[Claim]:
        # A read first, of the PBXs with alarms due: an idle scheduler never
        # takes the write lock (it ticks every second on every node, and each
        # write lock taken makes other SQLite writers wait or, if they read
        # first, fail), and a provider's scheduler opens no transaction for
        # its idle PBXs.
        with self.container.sessions() as session:
            pbxs = due_pbxs(session, self.asterisk)
            suspended = due_suspended(session)
        if suspended:  # rare: a write only when a suspended PBX has an alarm due
            with transaction(self.container.sessions) as session:
                skip_suspended(session, self.node)
        claimed: list[Claim] = []
        for pbx in pbxs:  # each in its own transaction: one PBX's lock never holds up another's
            # A claim reads then writes while the engine's attempts commit;
            # a deferred transaction then failed at once on SQLite ("database
            # is locked": 276 failed ticks in one run of bench wakeup).
            # ``transaction`` takes the write lock first: it waits its turn.
            with transaction(self.container.sessions) as session:
                claimed.extend(claim_due(session, pbx, self.node))
        return claimed

    def _expired(self, node: str | None) -> list[tuple[int, int]]:
        with transaction(self.container.sessions, read_only=True) as session:
            pbx_ids = None
            if self.asterisk is not None:
                pbx_ids = [p.id for p in list_pbxs(session) if p.asterisk_name == self.asterisk]
            return expired_attempts(session, node=node, pbx_ids=pbx_ids)

    def _fail(self, alarm_id: int, attempt: int, cause: str) -> None:
        with transaction(self.container.sessions) as session:
            complete_attempt(session, alarm_id, attempt, AttemptOutcome.LOST, cause)

    async def recover(self, node: str | None) -> int:
        """Fail attempts left in progress by a dead node (``node``) or whose lease expired (None).

        Their calls may still exist in Asterisk: hang them up, so no guest is
        left in a call nobody runs, then record the attempt as lost (it was
        placed, so it counts) and let the alarm carry on.
        """
        stale = await asyncio.to_thread(self._timed, lambda: self._expired(node))
        for alarm_id, attempt in stale:
            await self.engine.hangup(channel_of(alarm_id, attempt))
            why = "node restarted" if node else "lease expired"
            await asyncio.to_thread(self._timed, functools.partial(self._fail, alarm_id, attempt, why))
            log.warning("wakeup.attempt_recovered", alarm=alarm_id, attempt=attempt, node=node or "any")
        return len(stale)

    async def run(self, connected: asyncio.Event) -> None:
        # Our own unfinished attempts from before this process started (stable
        # node names only). Not again when the supervisor restarts this task:
        # this process's calls in progress are still alive then.
        if self.container.settings.node_name and not self._recovered_own:
            await connected.wait()
            await self.recover(self.node)
            self._recovered_own = True
        failures = 0
        recovered_at = -RECOVER_EVERY
        loop = asyncio.get_running_loop()
        while True:
            try:
                if connected.is_set():
                    if loop.time() - recovered_at >= max(RECOVER_EVERY, self.tick):
                        await self.recover(None)
                        recovered_at = loop.time()
                    claims = await asyncio.to_thread(self._timed, self._claim)
                    if claims:
                        log.debug("wakeup.claimed", count=len(claims), active=self.engine.active)
                    for claim in claims:
                        self.claimed += 1
                        asyncio.create_task(self.engine.start(claim))  # noqa: RUF006
                failures = 0
            except SQLAlchemyError as exc:
                # The database is away: keep ticking, the next one may succeed.
                log.warning("wakeup.scheduler_db_error", error=str(exc).splitlines()[0])
            except Exception:
                # One bad tick must not stop wake-up calls; a tick that keeps
                # failing is a broken scheduler: end, and let serve's
                # supervisor start a fresh one (counted, shown in doctor).
                failures += 1
                log.exception("wakeup.scheduler_failed", consecutive=failures)
                if failures >= MAX_FAILED_TICKS:
                    raise
            try:
                await asyncio.wait_for(self._poke.wait(), self.tick)
            except TimeoutError:
                pass
            else:
                # Poked: a line came free. Behind a cap, lines free one at a
                # time as calls end; a moment's wait lets the ones ending
                # together be claimed for in one transaction (2.5 alarms per
                # claim in bench wakeup without it, and each claim is 8-10
                # statements whatever it takes).
                await asyncio.sleep(CLAIM_GATHER_SECONDS)
            self._poke.clear()
