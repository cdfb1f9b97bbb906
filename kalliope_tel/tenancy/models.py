"""Companies and their PBXs, the root of tenancy, and the Asterisk servers
PBXs live on.

A company is the installation's partner (a provider) or one of a partner's
customers: a fixed two-level tree (a stored ancestry goes stale on moves,
omnia-notes lesson 8). Every PBX belongs to a company, and every domain row
carries ``pbx_id`` to its PBX; deleting a company deletes its PBXs and, by
the foreign keys' cascades, every row of theirs. ``AsteriskServer`` and
``ServeNode`` are the installation's infrastructure, not a tenant's data.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from kalliope_tel.db.base import Base, ReachesAsterisk, UTCDateTime, str_enum, utcnow
from kalliope_tel.db.leases import Leased

DEFAULT_PBX_SLUG = "default"


class AsteriskServer(Base):
    """An Asterisk that PBXs can be bound to, besides the default one of the
    settings (``ari_url`` or the lab). Either a lab instance by name, or
    addresses and credentials; passwords are secrets (masked in every
    output, given on standard input, never in argv)."""

    __tablename__ = "asterisk_server"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    lab_name: Mapped[str] = mapped_column(String(64), default="")
    ari_url: Mapped[str] = mapped_column(String(200), default="")
    ari_username: Mapped[str] = mapped_column(String(64), default="")
    ari_password: Mapped[str] = mapped_column(String(200), default="")
    ami_url: Mapped[str] = mapped_column(String(200), default="")
    ami_username: Mapped[str] = mapped_column(String(64), default="")
    ami_password: Mapped[str] = mapped_column(String(200), default="")
    # Where 'asterisk apply' writes this server's files (empty: the lab's etc).
    config_dir: Mapped[str] = mapped_column(String(300), default="")
    device_template: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CompanyKind(enum.StrEnum):
    PARTNER = "partner"  # a provider: runs its customers' PBXs
    CUSTOMER = "customer"


class CompanyStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # its PBXs stop serving, its users cannot log in


class Company(Base):
    """The seed's company data (Ragione Sociale, Codice identificativo
    Cliente, Partita IVA, Codice fiscale), checked by ``tenancy.companies``."""

    __tablename__ = "company"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'partner' AND parent_id IS NULL) OR (kind = 'customer' AND parent_id IS NOT NULL)",
            name="partner_has_no_parent",
        ),
        UniqueConstraint("parent_id", "customer_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[CompanyKind] = mapped_column(str_enum(CompanyKind, "company_kind"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    customer_code: Mapped[str | None] = mapped_column(String(40))  # unique among a partner's customers
    vat_number: Mapped[str] = mapped_column(String(13), default="")  # IT + 11 digits, stored compact
    fiscal_code: Mapped[str] = mapped_column(String(16), default="")
    status: Mapped[CompanyStatus] = mapped_column(
        str_enum(CompanyStatus, "company_status"), default=CompanyStatus.ACTIVE
    )
    manager_enabled: Mapped[bool] = mapped_column(Boolean, default=True)  # the "Omnia Manager enabled" service
    # Its PBX users need a second factor too (Console and Manager members always do).
    pbx_users_second_factor: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class PbxKind(enum.StrEnum):
    SINGLE = "single"
    SHARED = "shared"  # shares queues, ring groups and BLF with other customers' PBXs
    GROUP = "group"  # shares one numbering plan with other customers' PBXs


class PbxGroupKind(enum.StrEnum):
    SHARED = "shared"  # members share ring groups (and queues), routes and BLF
    NUMBERING = "numbering"  # members share one internal numbering plan


class PbxGroup(Base):
    """PBXs of several customers of one partner working together (the
    seed's "PBX condiviso" and "PBX di gruppo"). The kind of its members
    (``Pbx.kind``: shared or group) follows the group's."""

    __tablename__ = "pbx_group"
    __table_args__ = (UniqueConstraint("partner_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The partner whose customers' PBXs join it; deleting the partner deletes it.
    partner_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[PbxGroupKind] = mapped_column(str_enum(PbxGroupKind, "pbx_group_kind"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Pbx(ReachesAsterisk, Base):
    __tablename__ = "pbx"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # None: the installation's default Asterisk (settings or lab).
    asterisk_server_id: Mapped[int | None] = mapped_column(
        ForeignKey("asterisk_server.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Goes up with every change of what the generated Asterisk configuration
    # is made from (kalliope_tel.asterisk.config_serial); serve applies it.
    config_serial: Mapped[int] = mapped_column(Integer, default=0)
    # Its company; deleting the company deletes the PBX and everything of it.
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    # Single, or a member of a shared or a numbering group (group_id).
    kind: Mapped[PbxKind] = mapped_column(str_enum(PbxKind, "pbx_kind"), default=PbxKind.SINGLE)
    # Licences purchased (Omnia Manager): None is no limit (an installation
    # that does not count them); an extension past the count is refused.
    start_licences: Mapped[int | None] = mapped_column(Integer)
    plus_licences: Mapped[int | None] = mapped_column(Integer)
    call_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    # Suspended by its partner alone (its company may be active): it stops
    # serving like a suspended company's PBXs (``companies.serving_pbx_ids``).
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    # The hotel module: its dialplan, service codes, panel and jobs exist
    # only for PBXs that have it.
    hotel_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # A shared or group PBX's group; leaving it makes the PBX single again.
    group_id: Mapped[int | None] = mapped_column(ForeignKey("pbx_group.id", ondelete="SET NULL"), index=True)
    # Where a call to one of its numbers goes when no extension has the
    # number's last digits: an extension number, or "" (refused as unallocated).
    default_destination: Mapped[str] = mapped_column(String(20), default="")
    # While it does not serve, a call to its numbers hears this sound (if
    # any, as early media: nothing is answered or billed), then is refused
    # with this cause (21, call rejected; 1, unallocated; 41, ...).
    suspended_announcement: Mapped[str] = mapped_column(String(100), default="")
    suspended_cause: Mapped[int] = mapped_column(Integer, default=21)

    asterisk_server: Mapped[AsteriskServer | None] = relationship(lazy="joined")

    def config_pbx_id(self, session: Session) -> int | None:
        return self.id

    @property
    def asterisk_name(self) -> str:
        return self.asterisk_server.name if self.asterisk_server else ""


class PbxOwned:
    """Mixin for domain rows: the PBX (tenant) a row belongs to."""

    pbx_id: Mapped[int] = mapped_column(ForeignKey("pbx.id", ondelete="CASCADE"), index=True)


def same_pbx(table: str, column: str, parent: str, ondelete: str | None = None) -> ForeignKeyConstraint:
    """``(pbx_id, column)`` references ``parent (pbx_id, id)``: the database
    itself refuses a row that points at another PBX's row."""
    return ForeignKeyConstraint(
        ["pbx_id", column],
        [f"{parent}.pbx_id", f"{parent}.id"],
        name=f"fk_{table}_{column}_same_pbx",
        ondelete=ondelete,
    )


def pbx_row(table: str) -> UniqueConstraint:
    """``(pbx_id, id)`` unique: what ``same_pbx`` keys refer to."""
    return UniqueConstraint("pbx_id", "id", name=f"uq_{table}_pbx_row")


class ServeNode(Base):
    """A running 'kalliope-tel serve' node: its supervised tasks and event-loop
    lag, written every few seconds, read by 'doctor' (any node, any machine)."""

    __tablename__ = "serve_node"

    node: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # {"tasks": {name: {"state", "restarts", "last_error"}}, "loop_lag_ms": {...}}
    status: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ConfigState(Leased, Base):
    """How far a PBX's configuration has reached its Asterisk: the serial the
    last successful write and reload carried, when, and the last error.
    Written by the ``serve`` node that applied it; shown on the
    administration pages. Not ``ReachesAsterisk``: recording the state must
    not look like a change to apply. Its lease is held by the node applying
    the PBX's change now: two nodes never write and reload it at once."""

    __tablename__ = "pbx_config_state"

    pbx_id: Mapped[int] = mapped_column(ForeignKey("pbx.id", ondelete="CASCADE"), primary_key=True)
    applied_serial: Mapped[int] = mapped_column(Integer, default=0)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str] = mapped_column(String(300), default="")
    error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
