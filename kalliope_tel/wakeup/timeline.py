"""An alarm's timeline: its attempts and what happened in each, both as
people say it (rang, answered, pressed 1, confirmed) and as the channel
events were recorded (for the administrator's technical view)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.wakeup.models import AlarmAttempt, AlarmEvent
from kalliope_tel.wakeup.services import get_alarm

# The call's events in a receptionist's words (catalogue codes); the
# technical ones (playbacks) have none and show only behind the toggle.
_SAID = {
    "originated": "timeline.rang",
    "ringing": "timeline.ringing",
    "answered": "timeline.answered",
    "hangup": "timeline.hung_up",
    "timeout": "timeline.no_digit",
    "originate_failed": "timeline.call_failed",
    "lost": "timeline.lost",
}


def said(kind: str, detail: str) -> dict[str, Any] | None:
    """An event of the timeline as people say it: a catalogue code and its parameters."""
    if kind == "digit":
        digit = detail.split(" ", 1)[0]
        return {
            "code": "timeline.pressed_ignored" if "ignored" in detail else "timeline.pressed",
            "params": {"digit": digit},
        }
    if kind == "outcome":
        return {"code": f"timeline.outcome.{detail}", "params": {}}
    code = _SAID.get(kind)
    return {"code": code, "params": {}} if code else None


def timeline(session: Session, pbx: Pbx, alarm_id: int) -> dict[str, Any]:
    alarm = get_alarm(session, pbx, alarm_id)
    attempts = session.scalars(
        select(AlarmAttempt).where(AlarmAttempt.alarm_id == alarm.id).order_by(AlarmAttempt.number)
    )
    events = session.scalars(
        select(AlarmEvent).where(AlarmEvent.alarm_id == alarm.id).order_by(AlarmEvent.at, AlarmEvent.id)
    )
    by_attempt: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        by_attempt.setdefault(e.attempt, []).append(
            {"at": e.at.isoformat(), "kind": e.kind, "detail": e.detail, "said": said(e.kind, e.detail)}
        )
    return {
        "alarm": alarm.id,
        "state": alarm.state.value,
        "due_at": alarm.due_at.isoformat(),
        "attempts": [
            {
                "number": a.number,
                "node": a.node,
                "started_at": a.started_at.isoformat(),
                "originated_at": a.originated_at.isoformat() if a.originated_at else None,
                "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                "outcome": a.outcome.value if a.outcome else None,
                "cause": a.cause,
                "events": by_attempt.get(a.number, []),
            }
            for a in attempts
        ],
    }
