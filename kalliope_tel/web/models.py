"""Web sessions and the audit of logins and actions.

A session is a row, not a signed cookie: logging out, changing a password or
removing a role ends it on every node at once. The cookie carries a random
token; the row keeps only its SHA-256, so a copy of the database does not
hold usable sessions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kalliope_tel.db.base import Base, UTCDateTime, utcnow


class WebSession(Base):
    __tablename__ = "web_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    # The account's generation the session was opened under.
    generation: Mapped[int] = mapped_column(Integer)
    # How far the login has come: "second_factor" (the code is owed),
    # "enrol" (a second factor must be enrolled first) or "in".
    stage: Mapped[str] = mapped_column(String(20), default="in")
    # The company chosen after login, and the view: that company or, for a
    # partner, one of its customers. Every page, call and log entry acts in
    # the view.
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    view_company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    # Sent back in X-CSRF-Token (or a form's csrf_token) with every change.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")


class AuditEntry(Base):
    """A login attempt or an action through the web (who, from where, what, result).

    Failed logins in here are what the login rate limit counts, so it holds
    across nodes and restarts.
    """

    __tablename__ = "web_audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    ip: Mapped[str] = mapped_column(String(64), default="", index=True)
    # The login as typed for login attempts (lower-cased), else the user's e-mail.
    login: Mapped[str] = mapped_column(String(254), default="", index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    pbx_id: Mapped[int | None] = mapped_column(ForeignKey("pbx.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(80))  # "login", "logout", "POST /api/v1/pbx/x/rooms/101/checkin"
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(String(200), default="")
