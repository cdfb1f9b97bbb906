"""Stasis application that runs wake-up flows: ARI events in, flow commands out.

Thin by design: it maps ARI events of an attempt's channel to flow events,
carries out the flow's commands with the ARI client, keeps timers, and writes
the timeline and the outcome through the wake-up services.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from kalliope_tel.asterisk import confgate
from kalliope_tel.asterisk.ari.errors import AriError
from kalliope_tel.asterisk.ari.models import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    Dial,
    Event,
    PlaybackFinished,
    PlaybackStarted,
    StasisStart,
    type_names,
)
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.wakeup import flow as f
from kalliope_tel.wakeup.dialplan import wakeup_caller_id, wakeup_dial_context
from kalliope_tel.wakeup.exceptions import AlarmNotFound
from kalliope_tel.wakeup.models import AlarmState
from kalliope_tel.wakeup.services import Claim, add_events, complete_attempts, mark_originated_many

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.asterisk.ari.runtime import AriRuntime
    from kalliope_tel.container import Container

log = structlog.get_logger(__name__)
T = TypeVar("T")

APP_NAME = "wakeup"
# How long an outcome is retried while the database is away (within the lease).
WRITE_RETRY_SECONDS = 240.0


@dataclass
class _Attempt:
    claim: Claim
    flow: f.WakeupFlow
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    dial_status: str = ""
    rang: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class WakeupApplication:
    event_types = type_names(
        Dial, StasisStart, ChannelDtmfReceived, PlaybackStarted, PlaybackFinished, ChannelDestroyed
    )

    def __init__(self, runtime: AriRuntime, container: Container, *, originate_app: str | None = None) -> None:
        self.runtime = runtime
        # The ARI application whose events reach this node (see serve).
        self.originate_app = originate_app or runtime.client.apps[0]
        self.container = container
        self.attempts: dict[str, _Attempt] = {}
        self._timeline: list[tuple[int, int, datetime, str, str]] = []
        # (alarm, attempt, when) of calls placed, written with the timeline:
        # shown in the alarm's history only, so it can wait for the next batch.
        self._originated: list[tuple[int, int, datetime]] = []
        self.completed = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher: asyncio.Task[None] | None = None
        # Outcomes waiting for the next commit (group commit, see _complete).
        self._outcomes: list[tuple[Claim, f.Finish, asyncio.Future[AlarmState]]] = []
        self._committer: asyncio.Task[None] | None = None
        # Called when an attempt ends, so the scheduler can refill the line.
        self.on_line_free: Callable[[], None] = lambda: None

    @property
    def active(self) -> int:
        return len(self.attempts)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no attempt is running; False if some still are after ``timeout``."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------ starting
    async def start(self, claim: Claim) -> None:
        config = f.FlowConfig(
            # The PBX's own wake-up context: its room, never another PBX's.
            endpoint=f"Local/{confgate.extension(claim.extension)}@{wakeup_dial_context(claim.pbx_slug)}",
            caller_id=wakeup_caller_id(claim.name, claim.number),
            ring_timeout=claim.ring_timeout,
            message=claim.message,
            confirm_answer=claim.confirm_answer,
            confirm_listen=claim.confirm_listen,
            digit_timeout=claim.digit_timeout,
        )
        attempt = _Attempt(claim, f.WakeupFlow(config))
        self.attempts[claim.channel_id] = attempt
        self._idle.clear()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_timeline(), name="wakeup-timeline")
        self.runtime.track(claim.channel_id, APP_NAME)
        await self._feed(attempt, f.Start())

    async def hangup(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.runtime.client.hangup(channel_id)

    # ------------------------------------------------------------ ARI events
    async def on_event(self, event: Event) -> None:
        attempt = self.attempts.get(event.channel_id or "")
        if attempt is None:
            return
        flow_event = self._translate(attempt, event)
        if flow_event is not None:
            await self._feed(attempt, flow_event)

    def _translate(self, attempt: _Attempt, event: Event) -> f.Event | None:
        if isinstance(event, Dial):
            if event.dialstatus == "RINGING" and not attempt.rang:
                attempt.rang = True
                return f.Ringing()
            if event.dialstatus:
                attempt.dial_status = event.dialstatus
            return None
        if isinstance(event, StasisStart):
            return f.Answered()
        if isinstance(event, ChannelDtmfReceived):
            return f.Digit(event.digit)
        if isinstance(event, PlaybackStarted | PlaybackFinished):
            _, _, pid = event.playback.id.partition(":")
            return f.PlaybackStarted(pid) if isinstance(event, PlaybackStarted) else f.PlaybackFinished(pid)
        if isinstance(event, ChannelDestroyed):
            return f.CallEnded(event.cause, event.cause_txt, attempt.dial_status)
        return None

    async def on_channels_lost(self, channel_ids: set[str]) -> None:
        for cid in channel_ids:
            attempt = self.attempts.get(cid)
            if attempt is not None:
                await self._feed(attempt, f.ConnectionLost())

    # ------------------------------------------------------------ commands
    async def _feed(self, attempt: _Attempt, event: f.Event) -> None:
        try:
            commands = attempt.flow.handle(event)
        except f.IllegalEvent as exc:
            log.error("wakeup.illegal_event", alarm=attempt.claim.alarm_id, error=str(exc))
            return
        for command in commands:
            await self._execute(attempt, command)

    async def _execute(self, attempt: _Attempt, command: f.Command) -> None:
        claim, client = attempt.claim, self.runtime.client
        cid = claim.channel_id
        if isinstance(command, f.Record):
            self._timeline.append((claim.alarm_id, claim.attempt, utcnow(), command.kind, command.detail))
        elif isinstance(command, f.Originate):
            try:
                await client.originate(
                    command.endpoint,
                    app=self.originate_app,
                    app_args=[APP_NAME, str(claim.alarm_id), str(claim.attempt)],
                    caller_id=command.caller_id,
                    timeout=command.timeout,
                    channel_id=cid,
                    variables=command.variables or None,
                )
            except AriError as exc:
                await self._feed(attempt, f.OriginateFailed(str(exc)))
                return
            # Batched with the timeline (one transaction every 0.5 s for all
            # calls, not one per call): while the database is away the call
            # goes on, and the mark lands when it is back.
            self._originated.append((claim.alarm_id, claim.attempt, utcnow()))
        elif isinstance(command, f.Play):
            with contextlib.suppress(AriError):  # the channel is gone: ChannelDestroyed follows
                await client.play(cid, command.media, playback_id=f"{cid}:{command.playback_id}")
        elif isinstance(command, f.StartTimer):
            self._cancel_timer(attempt, command.name)
            loop = asyncio.get_running_loop()
            attempt.timers[command.name] = loop.call_later(
                command.seconds, lambda: asyncio.ensure_future(self._feed(attempt, f.TimerFired(command.name)))
            )
        elif isinstance(command, f.CancelTimer):
            self._cancel_timer(attempt, command.name)
        elif isinstance(command, f.Hangup):
            await self.hangup(cid)
        elif isinstance(command, f.Finish):
            await self._finish(attempt, command)

    async def _flush_timeline(self, every: float = 0.5) -> None:
        """Write timeline entries as calls go, so a node that dies mid-call
        leaves the steps it saw (the outcome is written at the end)."""
        while True:
            await asyncio.sleep(every)
            rows, self._timeline = self._timeline, []
            marks, self._originated = self._originated, []
            if rows or marks:
                try:
                    await asyncio.to_thread(self._write, functools.partial(_write_progress, rows=rows, marks=marks))
                except SQLAlchemyError as exc:
                    # The database is away: one line, not a traceback twice a second.
                    log.warning("wakeup.timeline_write_failed", error=str(exc).splitlines()[0], rows=len(rows))
                    self._timeline, self._originated = rows + self._timeline, marks + self._originated
                except Exception:
                    log.exception("wakeup.timeline_write_failed")
                    self._timeline, self._originated = rows + self._timeline, marks + self._originated

    def _cancel_timer(self, attempt: _Attempt, name: str) -> None:
        handle = attempt.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    async def _finish(self, attempt: _Attempt, command: f.Finish) -> None:
        claim = attempt.claim
        self.attempts.pop(claim.channel_id, None)
        if not self.attempts:
            self._idle.set()
        for name in list(attempt.timers):
            self._cancel_timer(attempt, name)
        state = await self._complete(claim, command)
        self.on_line_free()
        self.completed += 1
        attempt.finished.set()
        log.info(
            "wakeup.attempt_done",
            alarm=claim.alarm_id,
            attempt=claim.attempt,
            outcome=command.outcome.value,
            alarm_state=str(state),
        )

    def _complete(self, claim: Claim, command: f.Finish) -> asyncio.Future[AlarmState]:
        """The attempt's outcome, written in the next commit.

        Group commit: outcomes that end while a commit is under way go
        together in the one after it. Alone, a call's outcome is written at
        once; under load, a transaction (its session, the write lock, the
        settings read, the change row for live panels, the commit) serves
        many calls: it was 3.8 ms of CPU per call, one each.
        """
        done: asyncio.Future[AlarmState] = asyncio.get_running_loop().create_future()
        self._outcomes.append((claim, command, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_outcomes(), name="wakeup-outcomes")
        return done

    async def _commit_outcomes(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            rows, self._timeline = self._timeline, []
            marks, self._originated = self._originated, []

            try:
                work = functools.partial(_write_outcomes, rows=rows, marks=marks, batch=batch)
                states = await self._write_retrying(work)
            except Exception as exc:  # each waiting call reports it, as it did alone
                for _, _, done in batch:
                    done.set_exception(exc)
                continue
            for (_, _, done), state in zip(batch, states, strict=True):
                if isinstance(state, AlarmNotFound):
                    done.set_exception(state)
                else:
                    done.set_result(state)

    async def _write_retrying(self, work: Callable[[Session], T]) -> T:
        """Write until the database takes it: an outcome is never dropped.

        A guest who confirmed must never be called again because the database
        was restarting when the call ended. The lease (several minutes) keeps
        the watchdog away meanwhile; errors that are not the database being
        away (a bug, a constraint) are raised at once.
        """
        delay, waited = 0.2, 0.0
        while True:
            try:
                return await asyncio.to_thread(self._write, work)
            except (OperationalError, InterfaceError) as exc:
                if waited >= WRITE_RETRY_SECONDS:
                    raise
                log.warning("wakeup.write_retry", error=str(exc).splitlines()[0], waited=round(waited, 1))
            except DBAPIError as exc:
                if not exc.connection_invalidated or waited >= WRITE_RETRY_SECONDS:
                    raise
                log.warning("wakeup.write_retry", error=str(exc).splitlines()[0], waited=round(waited, 1))
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)

    def _write(self, work: Callable[[Session], T]) -> T:
        # The write lock first (SQLite): these read the attempt, then write it.
        with transaction(self.container.sessions) as session:
            return work(session)


def _write_progress(
    session: Session, rows: list[tuple[int, int, datetime, str, str]], marks: list[tuple[int, int, datetime]]
) -> None:
    add_events(session, rows)
    mark_originated_many(session, marks)


def _write_outcomes(
    session: Session,
    rows: list[tuple[int, int, datetime, str, str]],
    marks: list[tuple[int, int, datetime]],
    batch: list[tuple[Claim, f.Finish, asyncio.Future[AlarmState]]],
) -> list[AlarmState | AlarmNotFound]:
    _write_progress(session, rows, marks)
    return complete_attempts(
        session, [(claim.alarm_id, claim.attempt, command.outcome, command.cause) for claim, command, _ in batch]
    )
