"""What wake-up lends the hotel (``Feature.provides``): the panel's alarms
of some rooms, and cancelling a room's pending alarms at check-out. The
hotel asks for these by name, so it never imports wake-up's modules."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kalliope_tel.db.base import utcnow
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.wakeup.models import PENDING_STATES, Alarm, AlarmState


def panel_alarms(session: Session, pbx: Pbx, room_ids: Collection[int] | None) -> dict[int, dict[str, Any]]:
    """Per room: its next pending alarm and its unanswered-alarm alerts."""
    query = (
        select(Alarm)
        .where(Alarm.pbx_id == pbx.id, Alarm.state.in_((*PENDING_STATES, AlarmState.NOT_ANSWERED)))
        .order_by(Alarm.due_at, Alarm.id)
    )
    if room_ids is not None:
        query = query.where(Alarm.room_id.in_(list(room_ids)))
    out: dict[int, dict[str, Any]] = {}
    for alarm in session.scalars(query):
        room = out.setdefault(alarm.room_id, {"next_alarm": None, "alerts": []})
        if alarm.state in PENDING_STATES and room["next_alarm"] is None:
            room["next_alarm"] = alarm.due_at.isoformat()
        elif alarm.state is AlarmState.NOT_ANSWERED:
            room["alerts"].append({"id": alarm.id, "due_at": alarm.due_at.isoformat(), "attempts": alarm.attempts_made})
    return out


def cancel_room_alarms(session: Session, room_id: int) -> int:
    """The room's pending alarms end, cancelled (a guest checked out)."""
    result = session.execute(
        update(Alarm)
        .where(Alarm.room_id == room_id, Alarm.state.in_(PENDING_STATES))
        .values(state=AlarmState.CANCELLED, finished_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
