"""Fax service rows (the Kalliope FAX module): settings, archival paths,
instances and their users, calls in progress, send jobs and their attempts,
received faxes, and the mail and archive deliveries that follow a fax.

Every row carries ``pbx_id``; references between rows use composite keys
``(pbx_id, <ref>_id)`` so the database refuses a row of one PBX pointing at
another PBX's row.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, ReachesAsterisk, UTCDateTime, str_enum, utcnow
from kalliope_tel.db.leases import Leased
from kalliope_tel.tenancy.models import PbxOwned, pbx_row, same_pbx


class Permission(enum.StrEnum):
    RECEIVE = "receive"  # reception only
    SEND = "send"  # sending only
    BOTH = "both"  # sending and reception

    @property
    def may_send(self) -> bool:
        return self in (Permission.SEND, Permission.BOTH)

    @property
    def may_receive(self) -> bool:
        return self in (Permission.RECEIVE, Permission.BOTH)


class StorageKind(enum.StrEnum):
    LOCAL = "local"
    REMOTE = "remote"


class Encryption(enum.StrEnum):
    NONE = "none"
    BUILTIN = "builtin"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    DIALLING = "dialling"
    SENDING = "sending"
    WAITING = "waiting"  # waiting to retry
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (JobState.SENT, JobState.FAILED, JobState.CANCELLED)


class Media(enum.StrEnum):
    """Which path carried the fax: our spandsp engine over externalMedia, or
    Asterisk's own res_fax (T.38 legs)."""

    ENGINE = "engine"
    ASTERISK = "asterisk"


class Mail2FaxAuth(enum.StrEnum):
    """How a Mail2Fax request proves its sender (seed: None, PIN, PGP signature)."""

    NONE = "none"  # the sender's address alone
    PIN = "pin"  # the plain-text body is exactly FAXPIN:<pin>
    PGP = "pgp"  # signed with the sender user's PGP key


class Mail2FaxEncryption(enum.StrEnum):
    NONE = "none"
    PGP = "pgp"


class PathPart(enum.StrEnum):
    """What an archival prefix or suffix adds to the path (seed: drop-down)."""

    NONE = "none"
    PBX = "pbx"
    INSTANCE = "instance"
    SELECTION = "selection"
    YEAR = "year"
    YEAR_MONTH = "year-month"
    DATE = "date"


class Separation(enum.StrEnum):
    """Where 'in' / 'out' goes in the archival path."""

    NONE = "none"
    BEFORE_PREFIX = "before-prefix"
    AFTER_SUFFIX = "after-suffix"


class FaxSettings(PbxOwned, ReachesAsterisk, Base):
    __tablename__ = "fax_settings"
    __table_args__ = (UniqueConstraint("pbx_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    max_inbound: Mapped[int] = mapped_column(Integer, default=0)  # 0: unlimited
    max_outbound: Mapped[int] = mapped_column(Integer, default=0)
    max_total: Mapped[int] = mapped_column(Integer, default=0)
    serial_number: Mapped[str] = mapped_column(String(40), default="")
    # Bumped by every admission: an UPDATE takes the row's write lock on both
    # databases, so nodes admitting calls for one PBX take turns.
    admissions: Mapped[int] = mapped_column(Integer, default=0)


class RemoteStorage(PbxOwned, Base):
    """An SFTP server archival paths can point at. The private key and the
    known-hosts file are paths (files readable by kalliope-tel only)."""

    __tablename__ = "fax_remote_storage"
    __table_args__ = (UniqueConstraint("pbx_id", "name"), pbx_row("fax_remote_storage"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    host: Mapped[str] = mapped_column(String(200))
    port: Mapped[int] = mapped_column(Integer, default=22)
    username: Mapped[str] = mapped_column(String(64))
    directory: Mapped[str] = mapped_column(String(300), default=".")
    key_file: Mapped[str] = mapped_column(String(300))
    known_hosts: Mapped[str] = mapped_column(String(300))


class ArchivePath(PbxOwned, Base):
    __tablename__ = "fax_archive_path"
    __table_args__ = (
        pbx_row("fax_archive_path"),
        same_pbx("fax_archive_path", "storage_id", "fax_remote_storage", "RESTRICT"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    kind: Mapped[StorageKind] = mapped_column(str_enum(StorageKind, "storage_kind"))
    directory: Mapped[str] = mapped_column(String(300), default="")  # local paths
    storage_id: Mapped[int | None] = mapped_column(Integer)  # remote paths
    encryption: Mapped[Encryption] = mapped_column(str_enum(Encryption, "archive_encryption"), default=Encryption.NONE)


class TemplateValues:
    """Instance settings a template may provide: ``None`` on an instance means
    'the template's value' (or the built-in default without a template)."""

    local_ident: Mapped[str | None] = mapped_column(String(20))
    header: Mapped[str | None] = mapped_column(String(50))
    max_total: Mapped[int | None] = mapped_column(Integer)
    ecm: Mapped[bool | None] = mapped_column(Boolean)
    min_rate: Mapped[int | None] = mapped_column(Integer)
    max_rate: Mapped[int | None] = mapped_column(Integer)
    modem: Mapped[str | None] = mapped_column(String(40))
    receive_enabled: Mapped[bool | None] = mapped_column(Boolean)
    max_inbound: Mapped[int | None] = mapped_column(Integer)
    send_enabled: Mapped[bool | None] = mapped_column(Boolean)
    max_outbound: Mapped[int | None] = mapped_column(Integer)
    outbound_class_id: Mapped[int | None] = mapped_column(Integer)
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    retry_minutes: Mapped[float | None] = mapped_column(Float)


TEMPLATE_FIELDS = (
    "local_ident",
    "header",
    "max_total",
    "ecm",
    "min_rate",
    "max_rate",
    "modem",
    "receive_enabled",
    "max_inbound",
    "send_enabled",
    "max_outbound",
    "outbound_class_id",
    "max_attempts",
    "retry_minutes",
)


class FaxTemplate(TemplateValues, PbxOwned, ReachesAsterisk, Base):
    __tablename__ = "fax_template"
    __table_args__ = (
        UniqueConstraint("pbx_id", "name"),
        pbx_row("fax_template"),
        same_pbx("fax_template", "outbound_class_id", "hotel_outbound_class", "RESTRICT"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


class FaxInstance(TemplateValues, PbxOwned, ReachesAsterisk, Base):
    __tablename__ = "fax_instance"
    __table_args__ = (
        UniqueConstraint("pbx_id", "name", name="uq_fax_instance_name"),
        UniqueConstraint("pbx_id", "selection", name="uq_fax_instance_selection"),
        pbx_row("fax_instance"),
        same_pbx("fax_instance", "template_id", "fax_template", "RESTRICT"),
        same_pbx("fax_instance", "outbound_class_id", "hotel_outbound_class", "RESTRICT"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    selection: Mapped[str] = mapped_column(String(20))
    template_id: Mapped[int | None] = mapped_column(Integer)
    # Mail2Fax (used by the Mail2Fax service).
    mail2fax_box: Mapped[str] = mapped_column(String(254), default="")
    mail2fax_auth: Mapped[Mail2FaxAuth] = mapped_column(str_enum(Mail2FaxAuth, "mail2fax_auth"), default="none")
    mail2fax_pin: Mapped[str] = mapped_column(String(16), default="")
    mail2fax_encryption: Mapped[Mail2FaxEncryption] = mapped_column(
        str_enum(Mail2FaxEncryption, "mail2fax_encryption"), default="none"
    )
    # Archival path of this instance's documents under each archival path.
    archive_prefix: Mapped[PathPart] = mapped_column(str_enum(PathPart, "archive_prefix"), default="none")
    archive_path: Mapped[str] = mapped_column(String(200), default="")
    archive_suffix: Mapped[PathPart] = mapped_column(str_enum(PathPart, "archive_suffix"), default="none")
    archive_separation: Mapped[Separation] = mapped_column(str_enum(Separation, "archive_separation"), default="none")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InstanceUser(PbxOwned, Base):
    __tablename__ = "fax_instance_user"
    __table_args__ = (
        UniqueConstraint("instance_id", "user_id"),
        same_pbx("fax_instance_user", "instance_id", "fax_instance", "CASCADE"),
        same_pbx("fax_instance_user", "user_id", "app_user", "CASCADE"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer)
    permission: Mapped[Permission] = mapped_column(str_enum(Permission, "fax_permission"))


class FaxSlot(PbxOwned, Base):
    """A fax call in progress, counted against the limits by every node."""

    __tablename__ = "fax_slot"
    __table_args__ = (same_pbx("fax_slot", "instance_id", "fax_instance", "CASCADE"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer)
    direction: Mapped[Direction] = mapped_column(str_enum(Direction, "fax_direction"))
    node: Mapped[str] = mapped_column(String(100))
    call_id: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FaxJob(PbxOwned, Leased, Base):
    """A fax to send: queued by 'fax send' (or Mail2Fax, or the web), carried
    out by serve in attempts until sent, failed or cancelled."""

    __tablename__ = "fax_job"
    __table_args__ = (
        pbx_row("fax_job"),
        same_pbx("fax_job", "instance_id", "fax_instance", "RESTRICT"),
        Index("ix_fax_job_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer)
    # The sender; a removed user's faxes stay in the register without one. A
    # single-column key: SET NULL on the composite (pbx_id, user_id) would
    # null pbx_id too (the services pick users of the job's PBX).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    state: Mapped[JobState] = mapped_column(str_enum(JobState, "fax_job_state"), default=JobState.QUEUED)
    pages: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(String(500))  # fax pages (TIFF), under the data dir
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)  # file names as given
    origin: Mapped[str] = mapped_column(String(20), default="cli")
    attempts_made: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(String(300), default="")
    report: Mapped[str] = mapped_column(String(500), default="")  # transmission report (PDF)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FaxAttempt(PbxOwned, Base):
    __tablename__ = "fax_attempt"
    __table_args__ = (
        UniqueConstraint("job_id", "number"),
        same_pbx("fax_attempt", "job_id", "fax_job", "CASCADE"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(100))
    call_id: Mapped[str] = mapped_column(String(100), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ok: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(300), default="")
    pages: Mapped[int] = mapped_column(Integer, default=0)
    bit_rate: Mapped[int] = mapped_column(Integer, default=0)
    ecm: Mapped[bool] = mapped_column(Boolean, default=False)
    remote_ident: Mapped[str] = mapped_column(String(40), default="")
    media: Mapped[Media] = mapped_column(str_enum(Media, "fax_media"), default=Media.ENGINE)


class FaxReceived(PbxOwned, Base):
    __tablename__ = "fax_received"
    __table_args__ = (
        pbx_row("fax_received"),
        same_pbx("fax_received", "instance_id", "fax_instance", "RESTRICT"),
        # Once per call, whoever registers it: the node that took it, its
        # restart, or another node on the same data directory finding its
        # note (two of them at once: the second insert fails, and its next
        # pass finds the row).
        UniqueConstraint("pbx_id", "call_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer)
    call_id: Mapped[str] = mapped_column(String(100))
    # The serve node that took the call ("" before migration 0011): with
    # several nodes on one Asterisk, where each call went.
    node: Mapped[str] = mapped_column(String(100), default="", server_default="")
    calling: Mapped[str] = mapped_column(String(40), default="")
    reached: Mapped[str] = mapped_column(String(40), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(300), default="")
    pages: Mapped[int] = mapped_column(Integer, default=0)
    bit_rate: Mapped[int] = mapped_column(Integer, default=0)
    ecm: Mapped[bool] = mapped_column(Boolean, default=False)
    remote_ident: Mapped[str] = mapped_column(String(40), default="")
    media: Mapped[Media] = mapped_column(str_enum(Media, "fax_media"), default=Media.ENGINE)
    document: Mapped[str] = mapped_column(String(500), default="")  # PDF under the data dir ("" without pages)
    file_name: Mapped[str] = mapped_column(String(200), default="")


class DeliveryKind(enum.StrEnum):
    MAIL = "mail"
    ARCHIVE = "archive"
    NOTICE = "notice"  # a prepared text mail (Mail2Fax accepted/refused): payload subject, body
    # A finished job's transmission report: written by whichever node claims
    # it, which then owes the report's mail and archive copies. Owed in the
    # transaction that ends the job, so a node dying right after loses nothing.
    REPORT = "report"


class FaxDelivery(PbxOwned, Leased, Base):
    """One e-mail or one archive copy owed for a fax, retried until done: a
    mail server or SFTP host that is down delays it, never loses it."""

    __tablename__ = "fax_delivery"
    __table_args__ = (Index("ix_fax_delivery_due", "done", "next_try_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[DeliveryKind] = mapped_column(str_enum(DeliveryKind, "fax_delivery_kind"))
    direction: Mapped[Direction] = mapped_column(str_enum(Direction, "fax_direction"))
    fax_id: Mapped[int] = mapped_column(Integer)  # fax_job.id or fax_received.id
    target: Mapped[str] = mapped_column(String(254))  # e-mail address, or archival path id
    payload: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
