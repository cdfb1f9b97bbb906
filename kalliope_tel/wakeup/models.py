"""Wake-up alarms: database rows with explicit states, driven by the scheduler.

States (``AlarmState``)::

    scheduled --claim--> in_progress --confirmed--> confirmed
        ^                    |
        +--unconfirmed, attempts left (next_attempt_at = end + interval)
                             |
                             +--unconfirmed, none left--> not_answered --ack--> acknowledged
    scheduled / in_progress --cancel--> cancelled

An ``in_progress`` alarm carries a lease (``lease_until``) held by the node
that claimed it; the watchdog of any node fails an attempt whose lease ran
out (its node died) so the alarm carries on.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.changes.models import RoomFeed
from kalliope_tel.db.base import Base, ReachesAsterisk, UTCDateTime, str_enum, utcnow
from kalliope_tel.db.leases import Leased
from kalliope_tel.tenancy.models import PbxOwned, same_pbx


class AlarmState(enum.StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    CONFIRMED = "confirmed"
    NOT_ANSWERED = "not_answered"
    ACKNOWLEDGED = "acknowledged"
    CANCELLED = "cancelled"


PENDING_STATES = (AlarmState.SCHEDULED, AlarmState.IN_PROGRESS)
ACTIVE_STATES = (AlarmState.SCHEDULED, AlarmState.IN_PROGRESS, AlarmState.NOT_ANSWERED)
FINISHED_STATES = (AlarmState.CONFIRMED, AlarmState.ACKNOWLEDGED)


class AttemptOutcome(enum.StrEnum):
    CONFIRMED = "confirmed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"
    HUNG_UP = "hung_up"  # answered, hung up before confirming
    NO_DIGIT = "no_digit"  # answered, never pressed the digit
    WRONG_DIGIT = "wrong_digit"
    LOST = "lost"  # our node or Asterisk died during the attempt
    SUSPENDED = "suspended"  # no call placed: the PBX's customer was suspended when it fell due


class WakeupSettings(PbxOwned, ReachesAsterisk, Base):
    __tablename__ = "wakeup_settings"
    __table_args__ = (UniqueConstraint("pbx_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    name: Mapped[str] = mapped_column(String(60), default="Wake-up call")  # caller-ID name
    number: Mapped[str] = mapped_column(String(20), default="")  # caller-ID number
    message: Mapped[str] = mapped_column(String(200), default="hello-world")  # sound played on answer
    attempts: Mapped[int] = mapped_column(Integer, default=3)
    ring_timeout: Mapped[int] = mapped_column(Integer, default=30)  # seconds
    interval: Mapped[int] = mapped_column(Integer, default=300)  # seconds between attempts
    confirm_answer: Mapped[bool] = mapped_column(Boolean, default=False)  # press 1 before the message
    confirm_listen: Mapped[bool] = mapped_column(Boolean, default=False)  # press 9 after it
    digit_timeout: Mapped[int] = mapped_column(Integer, default=10)  # seconds to wait for 1 or 9
    max_concurrent: Mapped[int] = mapped_column(Integer, default=50)  # simultaneous wake-up calls


class Alarm(PbxOwned, Leased, RoomFeed, Base):
    __tablename__ = "wakeup_alarm"
    __table_args__ = (same_pbx("wakeup_alarm", "room_id", "hotel_room", "CASCADE"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(Integer, index=True)
    stay_id: Mapped[int | None] = mapped_column(ForeignKey("hotel_stay.id", ondelete="SET NULL"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    state: Mapped[AlarmState] = mapped_column(
        str_enum(AlarmState, "alarm_state"), default=AlarmState.SCHEDULED, index=True
    )
    attempts_override: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Alarms made together as a daily series share this id (cancel them at once).
    series: Mapped[str | None] = mapped_column(String(36), index=True)
    attempts_made: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))


class AlarmAttempt(Base):
    """One call placed for an alarm (created when it is claimed, before dialling)."""

    __tablename__ = "wakeup_attempt"
    __table_args__ = (UniqueConstraint("alarm_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("wakeup_alarm.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    originated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[AttemptOutcome | None] = mapped_column(str_enum(AttemptOutcome, "attempt_outcome"))
    cause: Mapped[str] = mapped_column(String(80), default="")


class AlarmEvent(Base):
    """The timeline of an attempt: originated, ringing, answered, digits, playbacks, hang-up."""

    __tablename__ = "wakeup_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("wakeup_alarm.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(String(200), default="")
