"""A shared group's ring groups: a number of the group that rings
extensions of several member PBXs at once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kalliope_tel.db.base import Base, ReachesAsterisk, UTCDateTime, utcnow
from kalliope_tel.tenancy.models import Pbx


class RingGroup(ReachesAsterisk, Base):
    __tablename__ = "ring_group"
    __table_args__ = (UniqueConstraint("group_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("pbx_group.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(80), default="")
    # The extensions it rings, by id (extensions of the group's members);
    # one deleted or moved out of the group simply no longer rings.
    members: Mapped[list[int]] = mapped_column(JSON, default=list)
    ring_seconds: Mapped[int] = mapped_column(Integer, default=30)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def config_pbx_ids(self, session: Session) -> Iterable[int]:
        return list(session.scalars(select(Pbx.id).where(Pbx.group_id == self.group_id)))
