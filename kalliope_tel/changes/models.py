"""One row per change of a room (its cleaning, stay or alarms)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, UTCDateTime, utcnow


class RoomFeed:
    """Mixin for rows whose change is a change of a room the live panels
    show (the room itself, its stays, cleaning events, wake-up alarms): the
    session hook of ``changes.record`` asks each new, changed or deleted one
    which room it is, without knowing the features' models."""

    # A room itself counts whenever it is in the session's dirty set (its
    # relationships may have changed); the others only when modified.
    feed_always = False

    def feed_room(self) -> tuple[int, int] | None:
        """``(pbx_id, room_id)``, or None while the row has no room."""
        pbx_id, room_id = getattr(self, "pbx_id", None), getattr(self, "room_id", None)
        return (pbx_id, room_id) if isinstance(pbx_id, int) and isinstance(room_id, int) else None


class Change(Base):
    __tablename__ = "live_change"
    # SQLite must never reuse the id of a deleted row: a feed that saw id N
    # would skip a new change given N again after the cleanup.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # No foreign keys: a deleted room's last change must still be read.
    pbx_id: Mapped[int] = mapped_column(Integer)
    room_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
