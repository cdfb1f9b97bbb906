"""People: one account per person, and their memberships.

An account is a login (an e-mail address, an argon2 password, the second
factor). What the person may do comes from memberships: in companies (the
Omnia Console and Manager roles) and in PBXs (``users.models.User``, with
the roles the PBX panels know). The e-mail address is unique and compared
exactly, case included (KalliopePBX's rule: Mail2Fax finds a sender by it).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, UTCDateTime, str_enum, utcnow


class AccountStatus(enum.StrEnum):
    INVITED = "invited"  # no password yet: the invitation link sets it
    ACTIVE = "active"
    SUSPENDED = "suspended"  # may not log in; memberships kept


class Account(Base):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(80), default="")
    last_name: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[AccountStatus] = mapped_column(
        str_enum(AccountStatus, "account_status"), default=AccountStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # argon2id hash ("": cannot log in until a password is set).
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    # Bumped when the password, the second factor or a right changes:
    # sessions of an older generation end.
    password_generation: Mapped[int] = mapped_column(Integer, default=0)
    # The TOTP secret (base32, RFC 6238), "" until enrolled; the secret of an
    # enrolment in progress waits in ``totp_pending``.
    totp_secret: Mapped[str] = mapped_column(String(64), default="")
    totp_pending: Mapped[str] = mapped_column(String(64), default="")
    # The time step of the last code accepted: a code is accepted once.
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class RecoveryCode(Base):
    """A one-time code that stands in for the second factor; only its
    SHA-256 is kept (the codes are random, 50 bits: no slow hash needed)."""

    __tablename__ = "account_recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConsoleRole(enum.StrEnum):
    """Omnia's Admin Console: the company's users, customers, data, log."""

    ADMIN = "admin"
    READ_ONLY = "read_only"


class ManagerRole(enum.StrEnum):
    """Omnia Manager: the company's PBXs, extensions, numbers, trunks."""

    ADMIN = "admin"
    READ_ONLY = "read_only"


class CompanyMember(Base):
    """An account's membership of a company, with the seed's user fields."""

    __tablename__ = "company_member"
    __table_args__ = (UniqueConstraint("account_id", "company_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    console_role: Mapped[ConsoleRole | None] = mapped_column(str_enum(ConsoleRole, "console_role"))
    manager_role: Mapped[ManagerRole | None] = mapped_column(str_enum(ManagerRole, "manager_role"))
    # A partner's user who may create, suspend and delete its customers.
    manage_customers: Mapped[bool] = mapped_column(Boolean, default=False)
    department: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def needs_second_factor(self) -> bool:
        return self.console_role is not None or self.manager_role is not None
