"""The PBX, root of tenancy. Later domain tables carry ``pbx_id`` to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, UTCDateTime, utcnow

DEFAULT_PBX_SLUG = "default"


class Pbx(Base):
    __tablename__ = "pbx"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PbxOwned:
    """Mixin for domain rows: the PBX (tenant) a row belongs to."""

    pbx_id: Mapped[int] = mapped_column(ForeignKey("pbx.id", ondelete="CASCADE"), index=True)
