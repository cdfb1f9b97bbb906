"""Who is asking: logins, sessions, the rate limit and the audit.

No HTTP here: the web layer passes the address and the cookie's token and
gets a ``Principal`` back, or an error that says why not.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from kalliope_tel.db.base import utcnow
from kalliope_tel.errors import KalliopeError
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users import services as users
from kalliope_tel.users.models import Role, User
from kalliope_tel.web.models import AuditEntry, WebSession

SESSION_LIFETIME = timedelta(hours=12)
# Failed logins from one address, or for one login, within the window.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)


class LoginRefused(KalliopeError):
    """Wrong address or password (never which of the two)."""


class TooManyAttempts(KalliopeError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """A logged-in user, as every request sees them."""

    user_id: int
    name: str
    email: str
    full_name: str
    pbx_id: int
    pbx_slug: str
    pbx_name: str
    timezone: str
    roles: frozenset[Role]
    csrf_token: str
    token_hash: str

    def may(self, *roles: Role) -> bool:
        """Holds one of ``roles`` (an administrator holds every role of their PBX)."""
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def audit(
    session: Session,
    action: str,
    ok: bool,
    *,
    ip: str,
    login: str = "",
    user_id: int | None = None,
    pbx_id: int | None = None,
    detail: str = "",
) -> None:
    session.add(
        AuditEntry(
            action=action[:80],
            ok=ok,
            ip=ip[:64],
            login=login[:254],
            user_id=user_id,
            pbx_id=pbx_id,
            detail=detail[:200],
        )
    )


def _throttle(session: Session, ip: str, login: str, now: datetime) -> None:
    since = now - FAILURE_WINDOW
    failures = session.execute(
        select(func.count(), func.min(AuditEntry.at)).where(
            AuditEntry.action == "login",
            AuditEntry.ok.is_(False),
            AuditEntry.at >= since,
            or_(AuditEntry.ip == ip, AuditEntry.login == login),
        )
    ).one()
    if failures[0] >= MAX_FAILURES:
        oldest = failures[1] or now
        raise TooManyAttempts(max(1, int((oldest + FAILURE_WINDOW - now).total_seconds()) + 1))


def login(session: Session, email: str, password: str, *, ip: str) -> tuple[str, Principal]:
    """Check the credentials and open a session: (cookie token, principal).

    Refused logins are written to the audit by the caller's transaction, so
    the caller must commit even when this raises ``LoginRefused``.
    """
    now = utcnow()
    typed = email.strip()[:254]
    _throttle(session, ip, typed.lower(), now)
    user = users.find_by_email(session, typed)
    if user is None:
        users.dummy_password_check(password)
        audit(session, "login", False, ip=ip, login=typed.lower(), detail="unknown address")
        raise LoginRefused("wrong e-mail address or password")
    if not users.check_password(user, password):
        audit(session, "login", False, ip=ip, login=typed.lower(), user_id=user.id, pbx_id=user.pbx_id,
              detail="wrong password" if user.password_hash else "no web password set")  # fmt: skip
        raise LoginRefused("wrong e-mail address or password")
    if not user.role_set:
        audit(session, "login", False, ip=ip, login=typed.lower(), user_id=user.id, pbx_id=user.pbx_id,
              detail="no role")  # fmt: skip
        raise LoginRefused("this user has no role in the web panels; ask an administrator")
    audit(session, "login", True, ip=ip, login=typed.lower(), user_id=user.id, pbx_id=user.pbx_id)
    return open_session(session, user, ip=ip, now=now)


def open_session(session: Session, user: User, *, ip: str = "", now: datetime | None = None) -> tuple[str, Principal]:
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=token_hash(token),
        user_id=user.id,
        generation=user.password_generation,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
        ip=ip[:64],
    )
    session.add(row)  # expired rows go in the hourly housekeeping (prune)
    session.flush()
    principal = _principal(session, row, user)
    assert principal is not None
    return token, principal


def _principal(session: Session, row: WebSession, user: User) -> Principal | None:
    pbx = session.get(Pbx, user.pbx_id)
    if pbx is None or not user.role_set:
        return None
    return Principal(
        user_id=user.id,
        name=user.name,
        email=user.email,
        full_name=user.full_name,
        pbx_id=pbx.id,
        pbx_slug=pbx.slug,
        pbx_name=pbx.name,
        timezone=pbx.timezone,
        roles=user.role_set,
        csrf_token=row.csrf_token,
        token_hash=row.token_hash,
    )


def resolve(session: Session, token: str) -> Principal | None:
    """The principal of a session cookie, or None (unknown, expired, password
    changed or roles taken away since)."""
    if not token or len(token) > 100:
        return None
    row = session.get(WebSession, token_hash(token))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or user.password_generation != row.generation:
        return None
    return _principal(session, row, user)


def prune(session: Session, audit_days: int, now: datetime | None = None) -> tuple[int, int]:
    """Delete expired sessions and audit entries older than ``audit_days``: (sessions, entries)."""
    now = now or utcnow()
    sessions = session.execute(delete(WebSession).where(WebSession.expires_at < now))
    entries = session.execute(delete(AuditEntry).where(AuditEntry.at < now - timedelta(days=audit_days)))
    return int(getattr(sessions, "rowcount", 0) or 0), int(getattr(entries, "rowcount", 0) or 0)


def logout(session: Session, principal: Principal, *, ip: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == principal.token_hash))
    audit(session, "logout", True, ip=ip, login=principal.email.lower(), user_id=principal.user_id,
          pbx_id=principal.pbx_id)  # fmt: skip
