"""Hotel rows. Every table carries ``pbx_id``: the PBX (tenant) it belongs to.

Room settings come from a template and may be overridden per room: the room
columns named like the template's are ``None`` when the template's value
applies (see ``services.effective``). Failovers are one row per
(outcome, origin) pair, so a room overrides just the ones it needs.
"""

from __future__ import annotations

import enum
from datetime import datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from kalliope_tel.changes.models import RoomFeed
from kalliope_tel.db.base import Base, ReachesAsterisk, UTCDateTime, str_enum, utcnow
from kalliope_tel.extensions.models import Extension, SipAccount
from kalliope_tel.tenancy.models import PbxOwned, pbx_row, same_pbx


class LdapMode(enum.StrEnum):
    NONE = "none"
    INTERNAL = "internal"
    PUBLIC = "public"


def class_refs(table: str) -> tuple[ForeignKeyConstraint, ForeignKeyConstraint]:
    return (
        same_pbx(table, "standard_class_id", "hotel_outbound_class"),
        same_pbx(table, "restricted_class_id", "hotel_outbound_class"),
    )


class ClassKind(enum.StrEnum):
    """Which of a room's two outbound classes applies."""

    STANDARD = "standard"
    RESTRICTED = "restricted"


class Outcome(enum.StrEnum):
    NO_ANSWER = "noanswer"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


class Origin(enum.StrEnum):
    INTERNAL = "internal"
    EXTERNAL = "external"
    TRANSFER = "transfer"


class CleaningSource(enum.StrEnum):
    PHONE = "phone"
    OPERATOR = "operator"
    NIGHTLY = "nightly"
    CHECKOUT = "checkout"


class HotelSettings(PbxOwned, ReachesAsterisk, Base):
    __tablename__ = "hotel_settings"
    __table_args__ = (
        UniqueConstraint("pbx_id"),
        same_pbx("hotel_settings", "non_room_class_id", "hotel_outbound_class"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cleaning_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cleaning_prefix: Mapped[str] = mapped_column(String(16), default="*33")
    block_room_to_room: Mapped[bool] = mapped_column(Boolean, default=False)
    # Local time (the PBX's timezone) at which occupied rooms become dirty.
    nightly_dirty_at: Mapped[time] = mapped_column(Time, default=time(3, 0))
    # A room checked out needs cleaning before the next guest (a hotel's
    # usual rule; off for a house where guests clean up themselves).
    checkout_dirty: Mapped[bool] = mapped_column(Boolean, default=True)
    # Class of outbound calls from extensions that are not rooms.
    non_room_class_id: Mapped[int | None] = mapped_column(Integer)
    # An occupied room is published under its guest's name too (privacy:
    # off, the room's own name only).
    directory_guest_names: Mapped[bool] = mapped_column(Boolean, default=False)


class TemplateValues:
    """The settings a room inherits from its template (nullable on rooms)."""

    show_in_phonebook: Mapped[bool | None] = mapped_column(Boolean)
    ldap_mode: Mapped[LdapMode | None] = mapped_column(str_enum(LdapMode, "ldap_mode"))
    organization: Mapped[str | None] = mapped_column(String(100))  # shown as "building"
    organizational_unit: Mapped[str | None] = mapped_column(String(100))  # shown as "floor"
    # Classes of the same PBX (composite keys in each table's __table_args__).
    standard_class_id: Mapped[int | None] = mapped_column(Integer)
    restricted_class_id: Mapped[int | None] = mapped_column(Integer)
    calls_limit: Mapped[int | None] = mapped_column(Integer)  # 0: no limit
    busy_level: Mapped[int | None] = mapped_column(Integer)  # 0: never busy by count
    ring_timeout: Mapped[int | None] = mapped_column(Integer)  # seconds before "not answered"


TEMPLATE_FIELDS = (
    "show_in_phonebook",
    "ldap_mode",
    "organization",
    "organizational_unit",
    "standard_class_id",
    "restricted_class_id",
    "calls_limit",
    "busy_level",
    "ring_timeout",
)


class TemplateDefaults(TemplateValues, PbxOwned, ReachesAsterisk, Base):
    """The "Default values of room templates" panel: seeds every new template."""

    __tablename__ = "hotel_template_defaults"
    __table_args__ = (UniqueConstraint("pbx_id"), *class_refs("hotel_template_defaults"))

    id: Mapped[int] = mapped_column(primary_key=True)
    failovers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class RoomTemplate(TemplateValues, PbxOwned, ReachesAsterisk, Base):
    __tablename__ = "hotel_room_template"
    __table_args__ = (
        UniqueConstraint("pbx_id", "name"),
        pbx_row("hotel_room_template"),
        *class_refs("hotel_room_template"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    failovers: Mapped[list[Failover]] = relationship(
        primaryjoin="Failover.template_id == RoomTemplate.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class Room(TemplateValues, PbxOwned, ReachesAsterisk, RoomFeed, Base):
    __tablename__ = "hotel_room"
    __table_args__ = (
        UniqueConstraint("pbx_id", "extension"),
        pbx_row("hotel_room"),
        *class_refs("hotel_room"),
        same_pbx("hotel_room", "template_id", "hotel_room_template", "RESTRICT"),
        # The room is its extension's hotel data: deleting the extension
        # deletes the room, and the number is the extension's.
        ForeignKeyConstraint(
            ["pbx_id", "extension"],
            ["extension.pbx_id", "extension.number"],
            name="fk_hotel_room_extension",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    extension: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(80))
    template_id: Mapped[int] = mapped_column(Integer)
    clean: Mapped[bool] = mapped_column(Boolean, default=True)
    cleaning_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    template: Mapped[RoomTemplate] = relationship(lazy="joined")
    failovers: Mapped[list[Failover]] = relationship(
        primaryjoin="Failover.room_id == Room.id", cascade="all, delete-orphan", lazy="selectin"
    )
    ext: Mapped[Extension] = relationship(
        primaryjoin="and_(Room.pbx_id == foreign(Extension.pbx_id), Room.extension == foreign(Extension.number))",
        viewonly=True,
        lazy="joined",
    )

    @property
    def accounts(self) -> list[SipAccount]:
        return self.ext.accounts

    feed_always = True

    def feed_room(self) -> tuple[int, int] | None:
        return (self.pbx_id, self.id) if self.id is not None else None


class Failover(ReachesAsterisk, Base):
    """Where a call goes when the room does not answer, is busy or unavailable.

    ``destination`` is an extension number (dialled in the internal context)
    or ``hangup``. A row belongs to a template or to a room (an override).
    """

    __tablename__ = "hotel_failover"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("hotel_room_template.id", ondelete="CASCADE"))
    room_id: Mapped[int | None] = mapped_column(ForeignKey("hotel_room.id", ondelete="CASCADE"))
    outcome: Mapped[Outcome] = mapped_column(str_enum(Outcome, "failover_outcome"))
    origin: Mapped[Origin] = mapped_column(str_enum(Origin, "failover_origin"))
    destination: Mapped[str] = mapped_column(String(40))

    def config_pbx_id(self, session: Session) -> int | None:
        owner = session.get(Room, self.room_id) if self.room_id else session.get(RoomTemplate, self.template_id)
        return owner.pbx_id if owner is not None else None


class Stay(PbxOwned, RoomFeed, Base):
    """A reservation: from check-in to check-out. Open while ``checkout_at`` is null."""

    __tablename__ = "hotel_stay"
    __table_args__ = (same_pbx("hotel_stay", "room_id", "hotel_room", "CASCADE"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(Integer, index=True)
    # Copied at check-in: history keeps what the room was called then.
    room_extension: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str] = mapped_column(String(120))
    guests: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    outbound: Mapped[ClassKind] = mapped_column(str_enum(ClassKind, "class_kind"), default=ClassKind.RESTRICTED)
    checkin_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    checkout_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    room: Mapped[Room] = relationship(lazy="joined")


class CleaningEvent(PbxOwned, RoomFeed, Base):
    """Every change of a room's cleaning status, and who made it."""

    __tablename__ = "hotel_cleaning_event"
    __table_args__ = (same_pbx("hotel_cleaning_event", "room_id", "hotel_room", "CASCADE"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(Integer, index=True)
    clean: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[CleaningSource] = mapped_column(str_enum(CleaningSource, "cleaning_source"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NightlyReset(PbxOwned, Base):
    """One row per PBX and local date: the unique key makes the nightly reset
    happen once even when several nodes race for it."""

    __tablename__ = "hotel_nightly_reset"
    __table_args__ = (UniqueConstraint("pbx_id", "local_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    local_date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the PBX's timezone
    node: Mapped[str] = mapped_column(String(100))
    rooms: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
