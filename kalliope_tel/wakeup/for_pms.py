"""What wake-up lends the PMS link (``Feature.provides``): cancelling a
room's alarms due at a time (the PMS's WC), and the outcome of the alarms
the PMS set (answered with WA). The PMS link asks by name and never
imports wake-up's modules."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kalliope_tel.db.base import utcnow
from kalliope_tel.hotel.services import get_room
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.wakeup.models import PENDING_STATES, Alarm, AlarmState

# Outcomes the PMS is told, by final state: OK (the guest answered and
# confirmed), NR (no response after every attempt), CX (cancelled before it rang).
OUTCOMES = {
    AlarmState.CONFIRMED: "OK",
    AlarmState.ACKNOWLEDGED: "NR",  # not answered; reception acknowledged the alert
    AlarmState.NOT_ANSWERED: "NR",
    AlarmState.CANCELLED: "CX",
}


def cancel_alarms_at(session: Session, pbx: Pbx, extension: str, at: datetime) -> int:
    """The room's pending alarms due within the minute of ``at``, cancelled."""
    room = get_room(session, pbx, extension)
    minute = at.replace(second=0, microsecond=0)
    result = session.execute(
        update(Alarm)
        .where(Alarm.room_id == room.id, Alarm.state.in_(PENDING_STATES))
        .where(Alarm.due_at >= minute, Alarm.due_at < minute + timedelta(minutes=1))
        .values(state=AlarmState.CANCELLED, finished_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def alarm_outcomes(session: Session, alarm_ids: Collection[int]) -> dict[int, str]:
    """The alarms among ``alarm_ids`` that are over, with the PMS's outcome code."""
    if not alarm_ids:
        return {}
    rows = session.execute(select(Alarm.id, Alarm.state).where(Alarm.id.in_(list(alarm_ids))))
    found = {alarm_id: state for alarm_id, state in rows}
    out: dict[int, str] = {}
    for alarm_id in alarm_ids:
        state = found.get(alarm_id)
        if state is None:  # deleted with its room: the PMS hears it was not made
            out[alarm_id] = "CX"
        elif state in OUTCOMES:
            out[alarm_id] = OUTCOMES[state]
    return out
