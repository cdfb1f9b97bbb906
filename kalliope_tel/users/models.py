"""Users of a PBX: a person's membership of one PBX, with its roles.

The person is an ``accounts.models.Account`` (e-mail, password, second
factor), which may be a user of several PBXs and a member of companies. The
e-mail address is the account's: unique and compared exactly, as Mail2Fax
finds a sender's user by it.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kalliope_tel.accounts.models import Account
from kalliope_tel.db.base import Base, UTCDateTime, str_enum, utcnow
from kalliope_tel.db.leases import Leased
from kalliope_tel.tenancy.models import PbxOwned, pbx_row


class Role(enum.StrEnum):
    """What a user may do in the web panels and the API, within their PBX.

    A user is a membership of one PBX, so a role is always a role *in that PBX*.
    """

    ADMIN = "admin"  # everything of the PBX: hotel, alarms, every fax
    RECEPTIONIST = "receptionist"  # the receptionist panel: rooms, stays, cleaning, alarms
    FAX = "fax"  # the fax register of their own instances and the send-fax page
    LAM = "lam"  # LAM manager: every meeting room of the PBX (owners manage their own rooms)


class User(PbxOwned, Base):
    __tablename__ = "app_user"
    __table_args__ = (
        UniqueConstraint("pbx_id", "name"),
        UniqueConstraint("pbx_id", "account_id", name="uq_app_user_pbx_account"),
        pbx_row("app_user"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    # Mail2Fax "PGP signature" authentication: the user's public key.
    pgp_public_key: Mapped[str] = mapped_column(Text, default="")
    pgp_fingerprint: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    roles: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    account: Mapped[Account] = relationship(lazy="joined")

    @property
    def email(self) -> str:
        return self.account.email

    @property
    def full_name(self) -> str:
        return self.account.full_name

    @property
    def role_set(self) -> frozenset[Role]:
        return frozenset(r.role for r in self.roles)


class UserRole(Base):
    __tablename__ = "app_user_role"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))


class ResetState(enum.StrEnum):
    PENDING = "pending"  # the mail is owed
    SENT = "sent"  # the link is out; usable until it expires
    FAILED = "failed"  # the mail could not be sent (the tries ran out)
    USED = "used"
    REPLACED = "replaced"  # a newer link for the same user


class LinkKind(enum.StrEnum):
    RESET = "reset"  # a new password for an account that has one (24 h)
    INVITE = "invite"  # a new account's password and second factor (72 h)


class PasswordReset(Leased, Base):
    """A password reset or invitation link mailed to an account. Only the
    token's SHA-256 is kept for checking; the token itself stays until the
    mail is sent (it is in the mail), then is wiped."""

    __tablename__ = "app_password_reset"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    kind: Mapped[LinkKind] = mapped_column(str_enum(LinkKind, "link_kind"), default=LinkKind.RESET)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token: Mapped[str] = mapped_column(String(64), default="")  # until sent
    link_base: Mapped[str] = mapped_column(String(300))
    lang: Mapped[str] = mapped_column(String(5), default="en")
    state: Mapped[ResetState] = mapped_column(str_enum(ResetState, "password_reset_state"), default=ResetState.PENDING)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    error: Mapped[str] = mapped_column(String(300), default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
