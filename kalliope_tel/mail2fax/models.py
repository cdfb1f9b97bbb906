"""Mail2Fax boxes and the ledger of the requests read from them.

A request row is written in the same transaction as its job (or its
refusal), keyed by box, UIDVALIDITY and UID (POP3: 0 and the UIDL), so a
message is handled once across restarts and nodes; it leaves the server
only after that commit (``settled`` records that it did).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, UTCDateTime, str_enum, utcnow
from kalliope_tel.tenancy.models import PbxOwned, pbx_row, same_pbx


class Protocol(enum.StrEnum):
    IMAP = "imap"
    POP3 = "pop3"


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"  # a fax job was queued
    REFUSED = "refused"  # the sender was told why
    DROPPED = "dropped"  # unknown sender: no reply (no backscatter), logged


class Mail2FaxBox(PbxOwned, Base):
    __tablename__ = "mail2fax_box"
    __table_args__ = (UniqueConstraint("pbx_id", "name"), UniqueConstraint("address"), pbx_row("mail2fax_box"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    address: Mapped[str] = mapped_column(String(254))  # requests must be addressed (To) to it
    protocol: Mapped[Protocol] = mapped_column(str_enum(Protocol, "mail2fax_protocol"), default=Protocol.IMAP)
    ssl: Mapped[bool] = mapped_column(Boolean, default=True)
    server: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    timeout: Mapped[int] = mapped_column(Integer, default=30)  # seconds, for every network step
    username: Mapped[str] = mapped_column(String(254))
    password: Mapped[str] = mapped_column(String(200))  # secret: never shown, logged or passed in argv
    ca_file: Mapped[str] = mapped_column(String(500), default="")  # extra trusted CA (self-signed servers)
    folder: Mapped[str] = mapped_column(String(200), default="INBOX")
    processed_folder: Mapped[str] = mapped_column(String(200), default="")  # IMAP: move here; "" deletes
    poll_seconds: Mapped[int] = mapped_column(Integer, default=60)  # POP3 polling; IMAP re-IDLE period
    max_bytes: Mapped[int] = mapped_column(Integer, default=20_000_000)
    pgp_key: Mapped[str] = mapped_column(Text, default="")  # armored secret key: secret
    pgp_fingerprint: Mapped[str] = mapped_column(String(40), default="")
    # The receiving mail server whose Authentication-Results are believed
    # (its authserv-id, e.g. mx.example.com); "" trusts none, and instances
    # without PIN or PGP then refuse every request from this box.
    trusted_authserv_id: Mapped[str] = mapped_column(String(253), default="")
    holder: Mapped[str | None] = mapped_column(String(100))  # the serve node reading it
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Mail2FaxRequest(PbxOwned, Base):
    __tablename__ = "mail2fax_request"
    __table_args__ = (
        UniqueConstraint("box_id", "uidvalidity", "uid"),
        same_pbx("mail2fax_request", "box_id", "mail2fax_box", "CASCADE"),
        Index("ix_mail2fax_request_unsettled", "box_id", "settled"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    box_id: Mapped[int] = mapped_column(Integer)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)  # 0 for POP3
    uid: Mapped[str] = mapped_column(String(100))  # IMAP UID, or POP3 UIDL
    message_id: Mapped[str] = mapped_column(String(300), default="")
    sender: Mapped[str] = mapped_column(String(254), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[Outcome] = mapped_column(str_enum(Outcome, "mail2fax_outcome"))
    reason: Mapped[str] = mapped_column(String(300), default="")
    job_id: Mapped[int | None] = mapped_column(Integer)  # fax_job.id when accepted
    node: Mapped[str] = mapped_column(String(100), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    settled: Mapped[bool] = mapped_column(Boolean, default=False)  # removed or moved on the server


class Mail2FaxSignature(PbxOwned, Base):
    """A PGP signature that made a fax job: accepted once, so a copy of a
    signed request re-sent (to the same or any number) is refused."""

    __tablename__ = "mail2fax_signature"
    __table_args__ = (UniqueConstraint("pbx_id", "digest"), pbx_row("mail2fax_signature"))

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of signer, signature id and time
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    request_id: Mapped[int | None] = mapped_column(Integer)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
