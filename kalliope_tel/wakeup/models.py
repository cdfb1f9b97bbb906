"""Alarms: database rows with explicit states, driven by the scheduler."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, UTCDateTime, utcnow
from kalliope_tel.tenancy.models import PbxOwned


class AlarmState(enum.StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    CONFIRMED = "confirmed"
    NOT_ANSWERED = "not_answered"
    ACKNOWLEDGED = "acknowledged"
    CANCELLED = "cancelled"


PENDING_STATES = (AlarmState.SCHEDULED, AlarmState.IN_PROGRESS)


class Alarm(PbxOwned, Base):
    __tablename__ = "wakeup_alarm"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("hotel_room.id", ondelete="CASCADE"), index=True)
    stay_id: Mapped[int | None] = mapped_column(ForeignKey("hotel_stay.id", ondelete="SET NULL"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    state: Mapped[AlarmState] = mapped_column(
        Enum(
            AlarmState,
            name="alarm_state",
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=AlarmState.SCHEDULED,
        index=True,
    )
    attempts_override: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
