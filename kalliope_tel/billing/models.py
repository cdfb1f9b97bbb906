"""Cost profiles and their rules, the call records priced with them, and
where the reconciler stopped reading Asterisk's CDR file.

A call record is keyed by Asterisk's own identity of the CDR (server,
uniqueid, sequence), so the live path (AMI ``Cdr`` events) and the durable
one (the CDR file) can both offer it, from any number of nodes, and it is
written once. Its cost is computed when it is recorded and stored with the
profile and rule that priced it: changing a tariff later never rewrites a
guest's bill.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.billing.rating import Match
from kalliope_tel.db.base import Base, UTCDateTime, str_enum, utcnow
from kalliope_tel.tenancy.models import PbxOwned, pbx_row, same_pbx


class Direction(enum.StrEnum):
    OUTBOUND = "outbound"  # an outbound class sent it to a trunk: billable
    INTERNAL = "internal"  # rooms, extensions and services of the PBX
    REFUSED = "refused"  # the room's class refused the number


class CostProfile(PbxOwned, Base):
    """Rules for the calls that leave by one outgoing line ("" : the default
    profile, for lines that have none of their own)."""

    __tablename__ = "billing_profile"
    __table_args__ = (
        UniqueConstraint("pbx_id", "name", name="uq_billing_profile_name"),
        UniqueConstraint("pbx_id", "line", name="uq_billing_profile_line"),
        pbx_row("billing_profile"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    line: Mapped[str] = mapped_column(String(80), default="")
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    description: Mapped[str] = mapped_column(String(200), default="")
    # Bumped by every rule change: rating caches a compiled tariff per revision.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CostRule(PbxOwned, Base):
    __tablename__ = "billing_rule"
    __table_args__ = (
        # The database itself refuses a duplicate (same exact number, same
        # prefix, a second "other"); services say why before it gets here.
        UniqueConstraint("profile_id", "match", "digits"),
        same_pbx("billing_rule", "profile_id", "billing_profile", "CASCADE"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(Integer, index=True)
    match: Mapped[Match] = mapped_column(str_enum(Match, "billing_match"))
    digits: Mapped[str] = mapped_column(String(32), default="")
    connection_fee: Mapped[int] = mapped_column(BigInteger, default=0)  # ten-thousandths
    per_minute: Mapped[int] = mapped_column(BigInteger, default=0)  # ten-thousandths
    first_increment: Mapped[int] = mapped_column(Integer, default=60)
    next_increment: Mapped[int] = mapped_column(Integer, default=60)
    minimum: Mapped[int] = mapped_column(BigInteger, default=0)  # ten-thousandths
    description: Mapped[str] = mapped_column(String(200), default="")


class CallRecord(PbxOwned, Base):
    __tablename__ = "billing_call"
    __table_args__ = (
        UniqueConstraint("server", "uniqueid", "sequence", name="uq_billing_call_cdr"),
        Index("ix_billing_call_pbx_start", "pbx_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Asterisk's identity of the CDR. server: "" for the default Asterisk.
    server: Mapped[str] = mapped_column(String(30), default="")
    uniqueid: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    linkedid: Mapped[str] = mapped_column(String(64), default="")
    extension: Mapped[str] = mapped_column(String(20))  # the calling extension
    dialled: Mapped[str] = mapped_column(String(40))  # as the caller dialled it
    line: Mapped[str] = mapped_column(String(80), default="")  # the outgoing line (trunk)
    direction: Mapped[Direction] = mapped_column(str_enum(Direction, "billing_direction"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answer_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration: Mapped[int] = mapped_column(Integer)  # seconds, from the start
    billsec: Mapped[int] = mapped_column(Integer)  # seconds, from the answer
    disposition: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(200), default="")
    dst_channel: Mapped[str] = mapped_column(String(200), default="")
    # The room and stay of the calling extension when the call started.
    room_id: Mapped[int | None] = mapped_column(ForeignKey("hotel_room.id", ondelete="SET NULL"))
    stay_id: Mapped[int | None] = mapped_column(ForeignKey("hotel_stay.id", ondelete="SET NULL"), index=True)
    # The price, with what priced it; cost None: not priced (unpriced says why).
    cost: Mapped[int | None] = mapped_column(BigInteger)  # ten-thousandths
    currency: Mapped[str] = mapped_column(String(3), default="")
    billed_seconds: Mapped[int | None] = mapped_column(Integer)
    profile_name: Mapped[str] = mapped_column(String(80), default="")
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("billing_rule.id", ondelete="SET NULL"))
    rule_key: Mapped[str] = mapped_column(String(60), default="")  # e.g. "prefix:06", kept if the rule goes
    unpriced: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(10))  # "ami" or "file": which path recorded it first
    recorded_by: Mapped[str] = mapped_column(String(100), default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CdrCursor(Base):
    """How far the CDR file of one Asterisk has been read (any node's reading
    counts: records are idempotent, the cursor only saves re-reading)."""

    __tablename__ = "billing_cdr_cursor"

    server: Mapped[str] = mapped_column(String(30), primary_key=True)
    file_id: Mapped[str] = mapped_column(String(120), default="")  # device:inode of the file read
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    # SHA-256 of the file's first line: a file truncated in place (copytruncate)
    # or a new one on a reused inode has another, and is read from its start.
    head: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
