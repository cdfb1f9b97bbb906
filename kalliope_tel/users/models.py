"""Users of a PBX: the people fax instances (and later web panels) serve.

The e-mail address is unique across all PBXs and compared exactly (case
included), as the KalliopePBX fax documentation requires: Mail2Fax finds the
sender's user by it, and two users with one address would make that lookup
ambiguous.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, UTCDateTime, utcnow
from kalliope_tel.hotel.models import pbx_row
from kalliope_tel.tenancy.models import PbxOwned


class User(PbxOwned, Base):
    __tablename__ = "app_user"
    __table_args__ = (UniqueConstraint("pbx_id", "name"), UniqueConstraint("email"), pbx_row("app_user"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(254))
    full_name: Mapped[str] = mapped_column(String(120), default="")
    # Mail2Fax "PGP signature" authentication: the user's public key.
    pgp_public_key: Mapped[str] = mapped_column(Text, default="")
    pgp_fingerprint: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
