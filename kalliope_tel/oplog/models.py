"""The log of operations (Omnia's "Log"): who changed what, from where,
with the object's fields before and after (secrets masked).

Append-only: rows are only inserted; a trigger on both databases refuses
an UPDATE. A company's entries go when the company is deleted (they are
its rows); the partner's entry saying it deleted the customer stays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, UTCDateTime, utcnow


class LogEntry(Base):
    __tablename__ = "oplog_entry"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # The company whose log it is: the view the change was made in.
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    # The operation, a catalogue key ("log.customer_suspended").
    operation: Mapped[str] = mapped_column(String(60))
    object_kind: Mapped[str] = mapped_column(String(30))  # "customer", "account", ...
    object_label: Mapped[str] = mapped_column(String(200), default="")
    # Who: an account's e-mail, or an operating-system user for the CLI.
    actor: Mapped[str] = mapped_column(String(254))
    via: Mapped[str] = mapped_column(String(10))  # "web", "api" or "cli"
    ip: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
