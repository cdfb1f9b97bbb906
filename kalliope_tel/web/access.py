"""Who is asking: logins, sessions, the rate limit and the audit.

No HTTP here: the web layer passes the address and the cookie's token and
gets a ``Principal`` back, or an error that says why not.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from kalliope_tel import attempts
from kalliope_tel.attempts import TooManyAttempts
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.errors import KalliopeError
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users import services as users
from kalliope_tel.users.models import Role, User
from kalliope_tel.web.models import AuditEntry, WebSession

__all__ = ["LoginLimits", "LoginRefused", "Principal", "TooManyAttempts", "login", "resolve"]

SESSION_LIFETIME = timedelta(hours=12)
# An address that logged in to an account within this long is that
# account's own: the account-wide limit does not apply to it.
KNOWN_ADDRESS_DAYS = 90


@dataclass(frozen=True)
class LoginLimits:
    """Password checks allowed per window: for one account from one address
    (a user mistyping), from one address over all accounts (one guesser
    trying many), and for one account from every address it has not logged
    in from before (many guessers on one account). The last never locks out
    a user on an address they have logged in from: an attacker can make an
    account unreachable from new places for a window, not for its owner."""

    pair: int = 5
    address: int = 20
    account: int = 10
    window: timedelta = timedelta(minutes=15)


class LoginRefused(KalliopeError):
    """Wrong address or password (never which of the two)."""


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


def login(
    sessions: sessionmaker[Session], email: str, password: str, *, ip: str, limits: LoginLimits | None = None
) -> tuple[str, Principal]:
    """Check the credentials and open a session: (cookie token, principal).

    Three short transactions, and the password hash (about 0.1 s of CPU) in
    none of them: on SQLite a hash inside the write lock made a login flood
    stall every other writer (wake-up outcomes, fax jobs). The first counts
    the attempt against its limits (``TooManyAttempts`` past them, and then
    nothing is checked); the last writes the audit and opens the session.
    """
    limits = limits or LoginLimits()
    typed = email.strip()[:254]
    login_key = typed.lower()
    now = utcnow()
    with transaction(sessions) as session:
        _count_attempt(session, limits, login_key, ip, now)
        user = users.find_by_email(session, typed)
        found = None if user is None else (user.id, user.password_hash, user.password_generation)
    if found is None:
        users.dummy_password_check(password)
        ok, new_hash = False, None
    else:
        ok, new_hash = users.verify_password(found[1], password)
    with transaction(sessions) as session:
        user = None if found is None else session.get(User, found[0])
        if user is None or found is None:
            audit(session, "login", False, ip=ip, login=login_key, detail="unknown address")
            failure = "login.wrong"
        elif not ok or user.password_generation != found[2]:  # changed while we hashed: check again
            audit(session, "login", False, ip=ip, login=login_key, user_id=user.id, pbx_id=user.pbx_id,
                  detail="wrong password" if user.password_hash else "no web password set")  # fmt: skip
            failure = "login.wrong"
        elif not user.role_set:
            audit(session, "login", False, ip=ip, login=login_key, user_id=user.id, pbx_id=user.pbx_id,
                  detail="no role")  # fmt: skip
            failure = "login.no_role"
        else:
            if new_hash is not None:
                user.password_hash = new_hash
            audit(session, "login", True, ip=ip, login=login_key, user_id=user.id, pbx_id=user.pbx_id)
            attempts.forget(session, _pair_key(login_key, ip))
            return open_session(session, user, ip=ip, now=now)
    raise LoginRefused(failure)  # after the audit has committed


def _pair_key(login: str, ip: str) -> str:
    return f"login:pair:{login[:254]}|{ip[:64]}"


def _count_attempt(session: Session, limits: LoginLimits, login: str, ip: str, now: datetime) -> None:
    """Add this attempt to its keys, in one upsert each, and refuse it past a
    limit (then its own count is rolled back with the transaction)."""
    keys = [(f"login:address:{ip[:64]}", limits.address), (_pair_key(login, ip), limits.pair)]
    if not _known_address(session, login, ip, now):
        keys.append((f"login:account:{login[:254]}", limits.account))
    for key, allowed in keys:
        attempts.attempt(session, key, allowed, limits.window, what="attempts.logins", now=now)


def _known_address(session: Session, login: str, ip: str, now: datetime) -> bool:
    return (
        session.scalar(
            select(AuditEntry.id)
            .where(
                AuditEntry.login == login,
                AuditEntry.ip == ip,
                AuditEntry.action == "login",
                AuditEntry.ok.is_(True),
                AuditEntry.at >= now - timedelta(days=KNOWN_ADDRESS_DAYS),
            )
            .limit(1)
        )
        is not None
    )


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
    attempts.prune(session, now=now)
    return int(getattr(sessions, "rowcount", 0) or 0), int(getattr(entries, "rowcount", 0) or 0)


def logout(session: Session, principal: Principal, *, ip: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == principal.token_hash))
    audit(session, "logout", True, ip=ip, login=principal.email.lower(), user_id=principal.user_id,
          pbx_id=principal.pbx_id)  # fmt: skip
