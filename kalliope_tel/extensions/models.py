"""Extensions, SIP accounts and outbound classes of a PBX.

An extension is a number of a PBX with the devices that ring on it (SIP
accounts), a licence, a service PIN and, optionally, the PBX user behind it.
Features add their data to it by the number: a hotel room references its
extension by ``(pbx_id, number)`` (the database keeps them in step), so
deleting the extension deletes the room, its accounts and its PIN.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kalliope_tel.db.base import Base, ReachesAsterisk, UTCDateTime, str_enum, utcnow
from kalliope_tel.tenancy.models import PbxOwned, pbx_row


class Licence(enum.StrEnum):
    START = "start"  # calls, the apps
    PLUS = "plus"  # and a personal meeting room with its meeting ID


class DirectoryMode(enum.StrEnum):
    """How the extension is published in the directory phones search."""

    NONE = "none"  # not published
    BASIC = "basic"  # its number and name
    FULL = "full"  # and its user's e-mail and department


class ExtensionStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # no endpoint: its phones cannot register or call


class Extension(PbxOwned, ReachesAsterisk, Base):
    __tablename__ = "extension"
    __table_args__ = (UniqueConstraint("pbx_id", "number"), pbx_row("extension"))

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(80), default="")  # shown as caller ID
    licence: Mapped[Licence] = mapped_column(str_enum(Licence, "licence"), default=Licence.START)
    status: Mapped[ExtensionStatus] = mapped_column(
        str_enum(ExtensionStatus, "extension_status"), default=ExtensionStatus.ACTIVE
    )
    directory_mode: Mapped[DirectoryMode] = mapped_column(
        str_enum(DirectoryMode, "directory_mode"), default=DirectoryMode.BASIC
    )
    show_in_phonebook: Mapped[bool] = mapped_column(Boolean, default=True)  # the phones' XML phonebook
    # The PBX user (app_user) behind it, for the apps; same PBX (services check).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    accounts: Mapped[list[SipAccount]] = relationship(
        back_populates="extension", cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )


class ExtensionPin(Base):
    """The extension's service PIN, a salted hash. Apart from the extension:
    setting it is no change of Asterisk's configuration. Its tries are
    counted by ``kalliope_tel.attempts``, like every PIN and password."""

    __tablename__ = "extension_pin"

    extension_id: Mapped[int] = mapped_column(ForeignKey("extension.id", ondelete="CASCADE"), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(160))


class SipAccount(PbxOwned, ReachesAsterisk, Base):
    """A SIP account (PJSIP endpoint + auth + AOR); an extension may have several.

    Only the digest hash (HA1 = md5(login:realm:password)) is stored, not the
    password. HA1 is still a secret: SIP digest authentication needs nothing
    more, so whoever reads it can register as the phone. It is never printed
    or returned by the CLI (nor ``--json``), the store and the generated
    PJSIP file are readable by their owner (and Asterisk's group) only.
    """

    __tablename__ = "sip_account"
    __table_args__ = (UniqueConstraint("pbx_id", "username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    realm: Mapped[str] = mapped_column(String(64))
    ha1: Mapped[str] = mapped_column(String(32))
    max_contacts: Mapped[int] = mapped_column(Integer, default=1)
    # None: made but not yet given to an extension (it has no endpoint then).
    extension_id: Mapped[int | None] = mapped_column(ForeignKey("extension.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    extension: Mapped[Extension | None] = relationship(back_populates="accounts")


class OutboundClass(PbxOwned, ReachesAsterisk, Base):
    """A named set of destination patterns a caller may dial, routed to a
    trunk context (rooms, extensions and fax instances use them). The table
    keeps the hotel's name it was born with."""

    __tablename__ = "hotel_outbound_class"
    __table_args__ = (UniqueConstraint("pbx_id", "name"), pbx_row("hotel_outbound_class"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(200), default="")
    # Asterisk extension patterns, e.g. ["112", "113", "_1XX"] or ["_X."].
    patterns: Mapped[list[str]] = mapped_column(JSON, default=list)
    trunk_context: Mapped[str] = mapped_column(String(80))
