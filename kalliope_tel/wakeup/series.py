"""Daily wake-up calls: a series is one alarm per day at the same local
time for a room (``services.set_daily``). Listed as series, not as their
days, for the administrator's page; cancelling one cancels its pending days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kalliope_tel.hotel.models import Room
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.wakeup import services
from kalliope_tel.wakeup.exceptions import AlarmNotFound
from kalliope_tel.wakeup.models import PENDING_STATES, Alarm


@dataclass(frozen=True)
class Series:
    series: str
    room: str
    room_name: str
    at: str  # local HH:MM
    first: str  # the next pending day, local YYYY-MM-DD
    last: str
    days: int  # pending days left


def list_series(session: Session, pbx: Pbx) -> list[Series]:
    """The PBX's daily series with days still pending, by room."""
    rows = session.execute(
        select(Alarm.series, Room.extension, Room.name, func.min(Alarm.due_at), func.max(Alarm.due_at), func.count())
        .join(Room, Room.id == Alarm.room_id)
        .where(Alarm.pbx_id == pbx.id, Alarm.series.is_not(None), Alarm.state.in_(PENDING_STATES))
        .group_by(Alarm.series, Room.extension, Room.name)
        .order_by(Room.extension)
    ).all()
    tz = ZoneInfo(pbx.timezone)
    out = []
    for series, extension, name, first, last, days in rows:
        # min()/max() keep the column's type (aware UTC); a bare value is UTC too.
        first_local, last_local = ((v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(tz) for v in (first, last))
        out.append(
            Series(
                str(series),  # never None: the query keeps series only
                extension,
                name,
                f"{first_local:%H:%M}",
                f"{first_local:%Y-%m-%d}",
                f"{last_local:%Y-%m-%d}",
                days,
            )
        )
    return out


def cancel_series(session: Session, pbx: Pbx, series: str) -> int:
    """Cancel every pending day of ``series``; how many were cancelled."""
    first = session.scalars(
        select(Alarm.id).where(Alarm.pbx_id == pbx.id, Alarm.series == series, Alarm.state.in_(PENDING_STATES)).limit(1)
    ).first()
    if first is None:
        raise AlarmNotFound("wakeup.no_series")
    return services.cancel_alarm(session, pbx, first, series=True)
