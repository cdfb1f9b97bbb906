"""LAM rows: per-PBX settings (licences, dial-in number), rooms and their
owners, meetings with attendees, and the invitation mails owed.

A meeting's state::

    scheduled --update--> scheduled (sequence + 1, invitations sent again)
    scheduled --cancel--> cancelled (METHOD:CANCEL sent to every attendee)

An invitation is a row with explicit states (lesson 1 of the design notes):
``pending`` until a node sends it, then ``sent``, or ``failed`` after its
tries; a node claims it with a lease so two nodes never send it twice.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kalliope_tel.db.base import Base, ReachesAsterisk, UTCDateTime, str_enum, utcnow
from kalliope_tel.db.leases import Leased
from kalliope_tel.tenancy.models import PbxOwned, pbx_row, same_pbx


class LamSettings(PbxOwned, ReachesAsterisk, Base):
    __tablename__ = "lam_settings"
    __table_args__ = (UniqueConstraint("pbx_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Licensed rooms: the PBX may have this many rooms (0: LAM is off).
    licences: Mapped[int] = mapped_column(Integer, default=0)
    # The extension or DID phone participants dial ("" : no dial-in).
    dial_in_number: Mapped[str] = mapped_column(String(20), default="")


class LamRoom(PbxOwned, Base):
    __tablename__ = "lam_room"
    __table_args__ = (UniqueConstraint("pbx_id", "name"), pbx_row("lam_room"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A Plus extension's personal room (``lam.personal``): deleted with the extension.
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extension.id", ondelete="CASCADE"), unique=True, index=True
    )
    owners: Mapped[list[LamRoomOwner]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class LamRoomOwner(Base):
    __tablename__ = "lam_room_owner"
    __table_args__ = (UniqueConstraint("room_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("lam_room.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)


class MeetingState(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Meeting(PbxOwned, Base):
    __tablename__ = "lam_meeting"
    __table_args__ = (
        pbx_row("lam_meeting"),
        same_pbx("lam_meeting", "room_id", "lam_room", "CASCADE"),
        UniqueConstraint("instance_id"),
        UniqueConstraint("uid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(120))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    password: Mapped[str] = mapped_column(String(64), default="")
    waiting_room: Mapped[bool] = mapped_column(Boolean, default=True)
    # The videoconference instance: 42 random letters and digits, this meeting's only.
    instance_id: Mapped[str] = mapped_column(String(42))
    # Dial-in: guests type guest_pin, moderators moderator_pin (digits).
    guest_pin: Mapped[str] = mapped_column(String(12))
    moderator_pin: Mapped[str] = mapped_column(String(12))
    # iCalendar identity: one UID for the meeting's life, SEQUENCE bumped by each change.
    uid: Mapped[str] = mapped_column(String(120))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[MeetingState] = mapped_column(
        str_enum(MeetingState, "lam_meeting_state"), default=MeetingState.SCHEDULED
    )
    organizer_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    attendees: Mapped[list[Attendee]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class Attendee(Base):
    """A user of the PBX or an outside address; moderators get a token in their link."""

    __tablename__ = "lam_attendee"
    __table_args__ = (UniqueConstraint("meeting_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("lam_meeting.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(120), default="")
    moderator: Mapped[bool] = mapped_column(Boolean, default=False)


class InvitationKind(enum.StrEnum):
    REQUEST = "request"  # new or changed meeting
    CANCEL = "cancel"  # cancelled, or the attendee was removed


class InvitationState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # a newer version of the meeting was owed before this one went out


class Invitation(PbxOwned, Leased, Base):
    __tablename__ = "lam_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("lam_meeting.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    kind: Mapped[InvitationKind] = mapped_column(str_enum(InvitationKind, "lam_invitation_kind"))
    sequence: Mapped[int] = mapped_column(Integer)
    # The calendar as sent (what the attendee's client received).
    ics: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[InvitationState] = mapped_column(
        str_enum(InvitationState, "lam_invitation_state"), default=InvitationState.PENDING, index=True
    )
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
