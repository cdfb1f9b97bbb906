"""Wake-up alarms: what receptionists set, and the scheduler's claim/complete cycle.

Scheduling survives anything because every step is a committed row change:
an attempt row exists before its call is placed, the alarm holds a lease
while in progress, and a watchdog on any node fails attempts whose lease
expired. Two nodes never place the same attempt: claiming locks the PBX's
wake-up settings row (which also makes the concurrency cap global) and uses
``FOR UPDATE SKIP LOCKED`` on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.catalogue import Term
from kalliope_tel.changes import record as changes
from kalliope_tel.db import leases
from kalliope_tel.db.base import utcnow
from kalliope_tel.hotel.models import Room, Stay
from kalliope_tel.hotel.services import get_room
from kalliope_tel.tenancy.companies import serving_pbx_ids
from kalliope_tel.tenancy.models import AsteriskServer, Pbx
from kalliope_tel.tenancy.services import per_pbx_row
from kalliope_tel.wakeup.exceptions import AlarmNotFound, InvalidAlarm
from kalliope_tel.wakeup.models import (
    ACTIVE_STATES,
    FINISHED_STATES,
    PENDING_STATES,
    Alarm,
    AlarmAttempt,
    AlarmEvent,
    AlarmState,
    AttemptOutcome,
    WakeupSettings,
)


def _gated(check: Callable[[object], str], value: object, setting: str) -> None:
    try:
        check(value)
    except confgate.UnsafeValue as exc:
        raise InvalidAlarm(exc.code, **exc.params, setting=setting) from None


# Longest a wake-up call may last once answered; the lease covers it.
MAX_CALL_SECONDS = 120


# ------------------------------------------------------------------ settings
def get_settings(session: Session, pbx: Pbx) -> WakeupSettings:
    return per_pbx_row(session, WakeupSettings, pbx)


LIMITS = {
    "attempts": (1, 10),
    "ring_timeout": (5, 120),
    "interval": (1, 3600),
    "digit_timeout": (2, 60),
    "max_concurrent": (1, 1000),
}


def update_settings(session: Session, pbx: Pbx, **values: Any) -> WakeupSettings:
    settings = get_settings(session, pbx)
    for key, value in values.items():
        if value is None:
            continue
        if key in LIMITS:
            low, high = LIMITS[key]
            if not isinstance(value, int) or not low <= value <= high:
                raise InvalidAlarm("wakeup.setting_range", setting=key, low=low, high=high, value=value)
        elif key == "message":
            _gated(confgate.sound, value, key)
        elif key == "number" and value:
            _gated(lambda v: confgate.number(v, "what.caller_id_number"), value, key)
        elif key not in ("enabled", "name", "number", "message", "confirm_answer", "confirm_listen"):
            raise InvalidAlarm("wakeup.unknown_setting", setting=key)
        setattr(settings, key, value)
    session.flush()
    return settings


# ------------------------------------------------------------------ alarms
def _check_attempts(attempts: int | None) -> None:
    if attempts is not None and not 1 <= attempts <= 10:
        raise InvalidAlarm("wakeup.attempts_range", value=attempts)


def _new_alarm(session: Session, pbx: Pbx, room: Room, at: datetime, attempts: int | None, series: str | None) -> Alarm:
    if at.tzinfo is None:
        raise InvalidAlarm("wakeup.needs_timezone")
    if at <= utcnow():
        raise InvalidAlarm("wakeup.in_past", at=f"{at.astimezone(ZoneInfo(pbx.timezone)):%Y-%m-%d %H:%M}")
    stay = session.scalars(select(Stay).where(Stay.room_id == room.id, Stay.checkout_at.is_(None))).first()
    alarm = Alarm(
        pbx_id=pbx.id,
        room_id=room.id,
        stay_id=stay.id if stay else None,
        due_at=at,
        next_attempt_at=at,
        attempts_override=attempts,
        series=series,
    )
    session.add(alarm)
    return alarm


def set_alarm(session: Session, pbx: Pbx, extension: str, at: datetime, *, attempts: int | None = None) -> Alarm:
    _check_attempts(attempts)
    alarm = _new_alarm(session, pbx, get_room(session, pbx, extension), at, attempts, None)
    session.flush()
    return alarm


def set_daily(
    session: Session, pbx: Pbx, extension: str, at: time, first: date, last: date, *, attempts: int | None = None
) -> list[Alarm]:
    """One alarm per day from ``first`` to ``last`` at local time ``at`` (a series)."""
    _check_attempts(attempts)
    if last < first or (last - first).days > 366:
        raise InvalidAlarm("wakeup.series_span")
    room = get_room(session, pbx, extension)
    tz = ZoneInfo(pbx.timezone)
    series = str(uuid.uuid4())
    alarms = []
    for offset in range((last - first).days + 1):
        when = datetime.combine(first + timedelta(days=offset), at, tz)
        if when > utcnow():
            alarms.append(_new_alarm(session, pbx, room, when, attempts, series))
    if not alarms:
        raise InvalidAlarm("wakeup.series_past")
    session.flush()
    return alarms


def get_alarm(session: Session, pbx: Pbx, alarm_id: int) -> Alarm:
    alarm = session.get(Alarm, alarm_id)
    if alarm is None or alarm.pbx_id != pbx.id:
        raise AlarmNotFound("wakeup.not_found", id=alarm_id)
    return alarm


def change_alarm(session: Session, pbx: Pbx, alarm_id: int, at: datetime) -> Alarm:
    alarm = get_alarm(session, pbx, alarm_id)
    if alarm.state is not AlarmState.SCHEDULED or alarm.attempts_made:
        raise InvalidAlarm("wakeup.started", id=alarm_id, state=Term(f"state.{alarm.state.value}"))
    if at <= utcnow():
        raise InvalidAlarm("wakeup.in_past", at=f"{at.astimezone(ZoneInfo(pbx.timezone)):%Y-%m-%d %H:%M}")
    alarm.due_at = alarm.next_attempt_at = at
    session.flush()
    return alarm


def cancel_alarm(session: Session, pbx: Pbx, alarm_id: int, *, series: bool = False) -> int:
    """Cancel a pending alarm (or its whole series). An attempt in progress ends on its own."""
    alarm = get_alarm(session, pbx, alarm_id)
    if alarm.state not in PENDING_STATES:
        raise InvalidAlarm("wakeup.nothing_to_cancel", id=alarm_id, state=Term(f"state.{alarm.state.value}"))
    query = update(Alarm).where(Alarm.state.in_(PENDING_STATES), Alarm.pbx_id == pbx.id)
    query = query.where(Alarm.series == alarm.series) if series and alarm.series else query.where(Alarm.id == alarm.id)
    result = session.execute(query.values(state=AlarmState.CANCELLED, finished_at=utcnow()))
    # A bulk UPDATE: the ORM's change hook does not see it (a series is one room's).
    changes.record_rooms(session, [(pbx.id, alarm.room_id)])
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class AlarmView:
    id: int
    room: str
    room_name: str
    due_at: str
    state: str
    attempts_made: int
    attempts: int
    next_attempt_at: str | None
    series: str | None
    acknowledged_at: str | None


def _views(session: Session, pbx: Pbx, states: tuple[AlarmState, ...], extension: str | None) -> list[AlarmView]:
    settings = get_settings(session, pbx)
    query = (
        select(Alarm, Room)
        .join(Room, Room.id == Alarm.room_id)
        .where(Alarm.pbx_id == pbx.id, Alarm.state.in_(states))
        .order_by(Alarm.due_at, Alarm.id)
    )
    if extension:
        query = query.where(Room.extension == extension)
    return [
        AlarmView(
            a.id,
            r.extension,
            r.name,
            a.due_at.isoformat(),
            a.state.value,
            a.attempts_made,
            a.attempts_override or settings.attempts,
            a.next_attempt_at.isoformat() if a.next_attempt_at and a.state in PENDING_STATES else None,
            a.series,
            a.acknowledged_at.isoformat() if a.acknowledged_at else None,
        )
        for a, r in session.execute(query)
    ]


def list_active(session: Session, pbx: Pbx, extension: str | None = None) -> list[AlarmView]:
    """Future, in progress, and finished without confirmation but not acknowledged."""
    return _views(session, pbx, ACTIVE_STATES, extension)


def list_finished(session: Session, pbx: Pbx, extension: str | None = None) -> list[AlarmView]:
    """Confirmed, or not answered and acknowledged by the receptionist."""
    return _views(session, pbx, FINISHED_STATES, extension)


def alerts(session: Session, pbx: Pbx) -> list[AlarmView]:
    """ "No answer" alerts: every attempt failed and nobody has acknowledged it yet."""
    return _views(session, pbx, (AlarmState.NOT_ANSWERED,), None)


def acknowledge(session: Session, pbx: Pbx, alarm_id: int, by: str = "") -> Alarm:
    alarm = get_alarm(session, pbx, alarm_id)
    if alarm.state is not AlarmState.NOT_ANSWERED:
        raise InvalidAlarm("wakeup.not_an_alert", id=alarm_id, state=Term(f"state.{alarm.state.value}"))
    alarm.state = AlarmState.ACKNOWLEDGED
    alarm.acknowledged_at = utcnow()
    alarm.acknowledged_by = by
    session.flush()
    return alarm


# ------------------------------------------------------------------ scheduler side
@dataclass(frozen=True)
class Claim:
    alarm_id: int
    attempt: int
    pbx_slug: str
    extension: str
    name: str
    number: str
    message: str
    ring_timeout: int
    digit_timeout: int
    confirm_answer: bool
    confirm_listen: bool

    @property
    def channel_id(self) -> str:
        return channel_of(self.alarm_id, self.attempt)


def channel_of(alarm_id: int, attempt: int) -> str:
    """The ARI channel id of an attempt. Deterministic, so a second originate of
    the same attempt is refused by Asterisk and a recovering node can find it."""
    return f"kt-wakeup-{alarm_id}-{attempt}"


def lease_seconds(ring_timeout: int, digit_timeout: int) -> int:
    """How long an attempt's claim holds: the longest call those timeouts allow."""
    return ring_timeout + 2 * digit_timeout + MAX_CALL_SECONDS


class PbxRef(NamedTuple):
    """What a claim needs of its PBX (no ORM object: the scheduler claims per call)."""

    id: int
    slug: str


def due_pbxs(session: Session, asterisk: str | None = None, now: datetime | None = None) -> list[PbxRef]:
    """The PBXs with an alarm due, those bound to Asterisk ``asterisk`` ("" the
    default one) when given: a read, so an idle scheduler never takes the
    write lock, and a busy one claims only for the PBXs that have work."""
    due = select(Alarm.id).where(
        Alarm.pbx_id == Pbx.id, Alarm.state == AlarmState.SCHEDULED, Alarm.next_attempt_at <= (now or utcnow())
    )
    # A suspended customer's PBXs place no calls.
    query = select(Pbx.id, Pbx.slug).where(due.exists(), Pbx.id.in_(serving_pbx_ids())).order_by(Pbx.id)
    if asterisk == "":
        query = query.where(Pbx.asterisk_server_id.is_(None))
    elif asterisk is not None:
        query = query.join(AsteriskServer, AsteriskServer.id == Pbx.asterisk_server_id).where(
            AsteriskServer.name == asterisk
        )
    return [PbxRef(pbx_id, slug) for pbx_id, slug in session.connection().execute(query)]


def due_suspended(session: Session, now: datetime | None = None) -> bool:
    """Whether a suspended customer's PBX has an alarm due (a read: no lock)."""
    query = select(Alarm.id).where(
        Alarm.state == AlarmState.SCHEDULED,
        Alarm.next_attempt_at <= (now or utcnow()),
        Alarm.pbx_id.not_in(serving_pbx_ids()),
    )
    return session.scalar(query.limit(1)) is not None


def skip_suspended(session: Session, node: str, now: datetime | None = None) -> int:
    """Due alarms of a suspended customer's PBXs are not called, now or at
    the resume (a call hours late wakes nobody on time): each ends not
    answered, an alert for the reception, its attempt marked "suspended"."""
    now = now or utcnow()
    due = session.scalars(
        select(Alarm)
        .where(
            Alarm.state == AlarmState.SCHEDULED,
            Alarm.next_attempt_at <= now,
            Alarm.pbx_id.not_in(serving_pbx_ids()),
        )
        .with_for_update(skip_locked=True)
    ).all()
    for alarm in due:
        alarm.attempts_made += 1
        session.add(
            AlarmAttempt(
                alarm_id=alarm.id,
                number=alarm.attempts_made,
                node=node,
                started_at=now,
                ended_at=now,
                outcome=AttemptOutcome.SUSPENDED,
                cause="customer suspended",
            )
        )
        alarm.state, alarm.finished_at, alarm.next_attempt_at = AlarmState.NOT_ANSWERED, now, None
    if due:
        session.flush()
        changes.record_rooms(session, [(a.pbx_id, a.room_id) for a in due])
    return len(due)


def claim_due(
    session: Session, pbx: Pbx | PbxRef, node: str, now: datetime | None = None, limit: int | None = None
) -> list[Claim]:
    """Claim due alarms up to the PBX's cap of simultaneous calls; create their attempt rows."""
    clock_given = now is not None
    now = now or utcnow()
    conn = session.connection()
    # Serialise claims per PBX across nodes: the cap counts everyone's calls.
    settings = conn.execute(_LOCK_SETTINGS, {"b_pbx": pbx.id}).first()
    if settings is None:  # a PBX whose settings were never shown: its defaults
        session.add(WakeupSettings(pbx_id=pbx.id))
        session.flush()
        settings = conn.execute(_LOCK_SETTINGS, {"b_pbx": pbx.id}).one()
    if not settings.enabled:
        return []
    running = conn.execute(_COUNT_RUNNING, {"b_pbx": pbx.id}).scalar() or 0
    if not clock_given:
        # After the count: an attempt it counted as ended was committed before
        # it, with its end stamped before its commit, so these start after it
        # (their rows say so). Stamped before the count, an attempt ending
        # meanwhile overlapped the new ones on paper: 52 of a cap of 50 in
        # bench wakeup on PostgreSQL.
        now = utcnow()
    room_free = settings.max_concurrent - running
    if limit is not None:
        room_free = min(room_free, limit)
    if room_free <= 0:
        return []
    # Core rows and statements from here: this runs for every call a busy
    # PBX places, and ORM objects (load, dirty tracking, flush) were most of
    # the scheduler's CPU in bench wakeup.
    due = conn.execute(
        select(Alarm.id, Alarm.attempts_made, Alarm.room_id, Room.extension)
        .join(Room, Room.id == Alarm.room_id)
        .where(Alarm.pbx_id == pbx.id, Alarm.state == AlarmState.SCHEDULED, Alarm.next_attempt_at <= now)
        .order_by(Alarm.next_attempt_at, Alarm.id)
        .limit(room_free)
        .with_for_update(skip_locked=True, of=Alarm)
    ).all()
    if not due:
        return []
    lease = now + timedelta(seconds=lease_seconds(settings.ring_timeout, settings.digit_timeout))
    conn.execute(
        _CLAIM,
        [{"b_id": alarm_id, "b_attempts": made + 1, "b_node": node, "b_lease": lease} for alarm_id, made, _, _ in due],
    )
    conn.execute(
        insert(AlarmAttempt),
        [{"alarm_id": alarm_id, "number": made + 1, "node": node, "started_at": now} for alarm_id, made, _, _ in due],
    )
    changes.record_rooms(conn, [(pbx.id, room_id) for _, _, room_id, _ in due])  # the panels show "in progress"
    return [
        Claim(
            alarm_id,
            made + 1,
            pbx.slug,
            extension,
            settings.name,
            settings.number,
            settings.message,
            settings.ring_timeout,
            settings.digit_timeout,
            settings.confirm_answer,
            settings.confirm_listen,
        )
        for alarm_id, made, _, extension in due
    ]


_LOCK_SETTINGS = (
    select(
        WakeupSettings.enabled,
        WakeupSettings.max_concurrent,
        WakeupSettings.name,
        WakeupSettings.number,
        WakeupSettings.message,
        WakeupSettings.ring_timeout,
        WakeupSettings.digit_timeout,
        WakeupSettings.confirm_answer,
        WakeupSettings.confirm_listen,
    )
    .where(WakeupSettings.pbx_id == bindparam("b_pbx"))
    .with_for_update()
)
_COUNT_RUNNING = (
    select(func.count())
    .select_from(Alarm)
    .where(Alarm.pbx_id == bindparam("b_pbx"), Alarm.state == AlarmState.IN_PROGRESS)
)
_CLAIM = (
    update(Alarm)
    .where(Alarm.id == bindparam("b_id"))
    .values(
        state=AlarmState.IN_PROGRESS,
        attempts_made=bindparam("b_attempts"),
        claimed_by=bindparam("b_node"),
        lease_until=bindparam("b_lease", type_=Alarm.lease_until.type),
    )
)


# One statement for a batch of marks (executemany), prebuilt: the engine
# writes these for every call it places. Run on the connection, it is a plain
# executemany (through the ORM, a list of parameters means "by primary key").
_MARK_ORIGINATED = (
    update(AlarmAttempt)
    .where(AlarmAttempt.alarm_id == bindparam("b_alarm"), AlarmAttempt.number == bindparam("b_number"))
    .values(originated_at=bindparam("b_at", type_=AlarmAttempt.originated_at.type))
)


def mark_originated_many(session: Session, marks: list[tuple[int, int, datetime]]) -> None:
    """Stamp when each ``(alarm, attempt)`` call was placed."""
    if marks:
        params = [{"b_alarm": a, "b_number": n, "b_at": at} for a, n, at in marks]
        session.connection().execute(_MARK_ORIGINATED, params)


def add_events(session: Session, rows: list[tuple[int, int, datetime, str, str]]) -> None:
    """Timeline rows, inserted in one executemany (ORM objects cost 0.5 ms each)."""
    if rows:
        session.execute(
            insert(AlarmEvent),
            [{"alarm_id": a, "attempt": n, "at": at, "kind": k, "detail": d[:200]} for a, n, at, k, d in rows],
        )


def complete_attempt(
    session: Session, alarm_id: int, attempt: int, outcome: AttemptOutcome, cause: str = "", now: datetime | None = None
) -> AlarmState:
    """Record an attempt's end and move the alarm on: confirmed, retry, or alert.

    Idempotent per attempt: a second report of the same attempt (say, the
    watchdog after the engine) changes nothing.
    """
    (state,) = complete_attempts(session, [(alarm_id, attempt, outcome, cause)], now)
    if isinstance(state, AlarmNotFound):
        raise state
    return state


def complete_attempts(
    session: Session, outcomes: list[tuple[int, int, AttemptOutcome, str]], now: datetime | None = None
) -> list[AlarmState | AlarmNotFound]:
    """``complete_attempt`` for many attempts in one go: two locking reads for
    all of them and one executemany per kind of write (the wake-up engine's
    group commit). The result for each, in order: the alarm's state, or
    AlarmNotFound for that one alone."""
    now = now or utcnow()
    conn = session.connection()
    # Core rows and statements, as in claim_due: this runs for every call,
    # and the ORM version (load, dirty tracking, flush, the change hook) was
    # a fifth of the wake-up engine's CPU in bench wakeup.
    keys = list({(alarm_id, attempt): None for alarm_id, attempt, _, _ in outcomes})
    ids = sorted({alarm_id for alarm_id, _ in keys})  # locked in one order: no deadlock between writers
    attempt_rows = conn.execute(
        select(AlarmAttempt.alarm_id, AlarmAttempt.number, AlarmAttempt.outcome)
        .where(tuple_(AlarmAttempt.alarm_id, AlarmAttempt.number).in_(keys))
        .order_by(AlarmAttempt.alarm_id)
        .with_for_update()
    ).all()
    found = {(alarm_id, number) for alarm_id, number, _ in attempt_rows}
    still_open = {(alarm_id, number) for alarm_id, number, outcome in attempt_rows if outcome is None}
    alarms = {
        row.id: _AlarmNow(row.pbx_id, row.room_id, row.state, row.attempts_made, row.attempts_override)
        for row in conn.execute(
            select(Alarm.id, Alarm.pbx_id, Alarm.room_id, Alarm.state, Alarm.attempts_made, Alarm.attempts_override)
            .where(Alarm.id.in_(ids))
            .order_by(Alarm.id)
            .with_for_update()
        )
    }
    settings: dict[int, tuple[int, int]] = {}
    attempt_ends: list[dict[str, Any]] = []
    finishes: list[dict[str, Any]] = []
    retries: list[dict[str, Any]] = []
    moved: dict[int, tuple[int, int]] = {}  # alarms moved on: their (pbx, room), for the panels
    states: list[AlarmState | AlarmNotFound] = []
    for alarm_id, attempt, outcome, cause in outcomes:
        alarm = alarms.get(alarm_id)
        if alarm is None or (alarm_id, attempt) not in found:
            states.append(AlarmNotFound(f"no attempt {attempt} of alarm {alarm_id}"))
            continue
        if (alarm_id, attempt) not in still_open:
            states.append(alarm.state)  # reported before: nothing changes
            continue
        still_open.discard((alarm_id, attempt))
        attempt_ends.append(
            {"b_alarm": alarm_id, "b_number": attempt, "b_outcome": outcome, "b_cause": cause[:80], "b_at": now}
        )
        if alarm.state is not AlarmState.IN_PROGRESS or alarm.attempts_made != attempt:
            states.append(alarm.state)  # cancelled meanwhile, or a stale report
            continue
        if alarm.pbx_id not in settings:
            row = conn.execute(
                select(WakeupSettings.attempts, WakeupSettings.interval).where(WakeupSettings.pbx_id == alarm.pbx_id)
            ).one()
            settings[alarm.pbx_id] = (row.attempts, row.interval)
        attempts, interval = settings[alarm.pbx_id]
        if outcome is AttemptOutcome.CONFIRMED:
            alarm.state = AlarmState.CONFIRMED
        elif alarm.attempts_made >= (alarm.attempts_override or attempts):
            alarm.state = AlarmState.NOT_ANSWERED
        else:
            alarm.state = AlarmState.SCHEDULED
            retries.append({"b_id": alarm_id, "b_next": now + timedelta(seconds=interval)})
        if alarm.state is not AlarmState.SCHEDULED:
            finishes.append({"b_id": alarm_id, "b_state": alarm.state, "b_at": now})
        moved[alarm_id] = (alarm.pbx_id, alarm.room_id)
        states.append(alarm.state)
    if attempt_ends:
        conn.execute(_END_ATTEMPT, attempt_ends)
    if finishes:
        conn.execute(_FINISH_ALARM, finishes)
    if retries:
        conn.execute(_RETRY_ALARM, retries)
    changes.record_rooms(conn, moved.values())  # the panels
    _expire_written(session, set(moved), {(p["b_alarm"], p["b_number"]) for p in attempt_ends})
    return states


@dataclass
class _AlarmNow:
    """An alarm's row as ``complete_attempts`` moves it on."""

    pbx_id: int
    room_id: int
    state: AlarmState
    attempts_made: int
    attempts_override: int | None


_END_ATTEMPT = (
    update(AlarmAttempt)
    .where(AlarmAttempt.alarm_id == bindparam("b_alarm"), AlarmAttempt.number == bindparam("b_number"))
    .values(
        outcome=bindparam("b_outcome", type_=AlarmAttempt.outcome.type),
        cause=bindparam("b_cause", type_=AlarmAttempt.cause.type),
        ended_at=bindparam("b_at", type_=AlarmAttempt.ended_at.type),
    )
)
_FINISH_ALARM = (
    update(Alarm)
    .where(Alarm.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state", type_=Alarm.state.type),
        finished_at=bindparam("b_at", type_=Alarm.finished_at.type),
        claimed_by=None,
        lease_until=None,
    )
)
_RETRY_ALARM = (
    update(Alarm)
    .where(Alarm.id == bindparam("b_id"))
    .values(
        state=AlarmState.SCHEDULED,
        next_attempt_at=bindparam("b_next", type_=Alarm.next_attempt_at.type),
        claimed_by=None,
        lease_until=None,
    )
)


def _expire_written(session: Session, alarm_ids: set[int], attempt_keys: set[tuple[int, int]]) -> None:
    """Expire the session's loaded copies of the rows just written with Core
    statements, so a caller reading them in the same transaction sees the
    new values. The engine's sessions hold none."""
    for obj in list(session.identity_map.values()):
        if (isinstance(obj, Alarm) and obj.id in alarm_ids) or (
            isinstance(obj, AlarmAttempt) and (obj.alarm_id, obj.number) in attempt_keys
        ):
            session.expire(obj)


def expired_attempts(
    session: Session, now: datetime | None = None, node: str | None = None, pbx_ids: list[int] | None = None
) -> list[tuple[int, int]]:
    """In-progress alarms whose lease ran out (or, with ``node``, all of that node's),
    of the PBXs ``pbx_ids`` when given (those on one Asterisk)."""
    query = select(Alarm.id, Alarm.attempts_made).where(Alarm.state == AlarmState.IN_PROGRESS)
    if pbx_ids is not None:
        query = query.where(Alarm.pbx_id.in_(pbx_ids))
    query = query.where(Alarm.claimed_by == node) if node else query.where(leases.expired(Alarm, now or utcnow()))
    return [(a, n) for a, n in session.execute(query)]
