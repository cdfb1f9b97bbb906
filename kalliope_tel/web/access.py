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
from kalliope_tel.accounts import passwords
from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import Account, AccountStatus
from kalliope_tel.attempts import TooManyAttempts
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.errors import KalliopeError
from kalliope_tel.web import principal as principals
from kalliope_tel.web.models import AuditEntry, WebSession
from kalliope_tel.web.principal import CompanySeat, Principal, Seat, Stage

__all__ = [
    "CompanySeat",
    "LoginLimits",
    "LoginRefused",
    "Principal",
    "Seat",
    "Stage",
    "TooManyAttempts",
    "login",
    "resolve",
]

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


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def audit(
    session: Session,
    action: str,
    ok: bool,
    *,
    ip: str,
    login: str = "",
    account_id: int | None = None,
    pbx_id: int | None = None,
    detail: str = "",
) -> None:
    session.add(
        AuditEntry(
            action=action[:80],
            ok=ok,
            ip=ip[:64],
            login=login[:254],
            account_id=account_id,
            pbx_id=pbx_id,
            detail=detail[:200],
        )
    )


def login(
    sessions: sessionmaker[Session], email: str, password: str, *, ip: str, limits: LoginLimits | None = None
) -> tuple[str, Principal]:
    """Check the credentials and open a session: (cookie token, principal).
    The session's stage says whether a second factor is owed first.

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
        counted = _count_attempt(session, limits, login_key, ip, now)
        account = accounts.find_account(session, typed)
        found = None if account is None else (account.id, account.password_hash, account.password_generation)
    if found is None:
        passwords.dummy_password_check(password)
        ok, new_hash = False, None
    else:
        ok, new_hash = passwords.verify_password(found[1], password)
    with transaction(sessions) as session:
        account = None if found is None else session.get(Account, found[0])
        if account is None or found is None:
            audit(session, "login", False, ip=ip, login=login_key, detail="unknown address")
            failure = "login.wrong"
        elif not ok or account.password_generation != found[2]:  # changed while we hashed: check again
            audit(session, "login", False, ip=ip, login=login_key, account_id=account.id,
                  detail="wrong password" if account.password_hash else "no web password set")  # fmt: skip
            failure = "login.wrong"
        elif account.status is AccountStatus.SUSPENDED or not (live := principals.memberships(session, account)):
            suspended = account.status is AccountStatus.SUSPENDED or bool(
                principals.memberships(session, account, live=False)
            )
            audit(session, "login", False, ip=ip, login=login_key, account_id=account.id,
                  detail="suspended" if suspended else "no role")  # fmt: skip
            failure = "login.suspended" if suspended else "login.no_role"
        else:
            if new_hash is not None:
                account.password_hash = new_hash
            audit(session, "login", True, ip=ip, login=login_key, account_id=account.id)
            attempts.forget(session, _pair_key(login_key, ip))
            # A right password is no guess: twenty-five receptionists behind
            # one office address all log in within the window.
            for key in counted:
                attempts.give_back(session, key)
            return open_session(session, account, ip=ip, now=now, known=live)
    raise LoginRefused(failure)  # after the audit has committed


def _pair_key(login: str, ip: str) -> str:
    return f"login:pair:{login[:254]}|{ip[:64]}"


def _count_attempt(session: Session, limits: LoginLimits, login: str, ip: str, now: datetime) -> list[str]:
    """Add this attempt to its keys, in one upsert each, and refuse it past a
    limit (then its own count is rolled back with the transaction)."""
    keys = [(f"login:address:{ip[:64]}", limits.address), (_pair_key(login, ip), limits.pair)]
    if not _known_address(session, login, ip, now):
        keys.append((f"login:account:{login[:254]}", limits.account))
    for key, allowed in keys:
        attempts.attempt(session, key, allowed, limits.window, what="attempts.logins", now=now)
    return [key for key, _ in keys if key != _pair_key(login, ip)]  # the shared ones, given back on success


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


def open_session(
    session: Session,
    account: Account,
    *,
    ip: str = "",
    now: datetime | None = None,
    known: principals.Memberships | None = None,
) -> tuple[str, Principal]:
    """A new session; its stage asks for the second factor (or its
    enrolment) first when the account has one or needs one. ``known``: the
    account's live memberships, when the caller read them already."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    if account.totp_secret:
        stage = Stage.SECOND_FACTOR
    elif principals.second_factor_required(session, account):
        stage = Stage.ENROL
    else:
        stage = Stage.IN
    known = known if known is not None else principals.memberships(session, account)
    chosen = known.companies[0].company_id if len(known.companies) == 1 else None
    row = WebSession(
        token_hash=token_hash(token),
        account_id=account.id,
        generation=account.password_generation,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
        ip=ip[:64],
        stage=stage,
        company_id=chosen,
        view_company_id=chosen,
    )
    session.add(row)  # expired rows go in the hourly housekeeping (prune)
    session.flush()
    principal = principals.principal_of(session, row, account, known)
    assert principal is not None
    return token, principal


def resolve(session: Session, token: str) -> Principal | None:
    """The principal of a session cookie, or None (unknown, expired, password
    changed, suspended, or every right taken away since)."""
    if not token or len(token) > 100:
        return None
    row = session.get(WebSession, token_hash(token))
    if row is None or row.expires_at <= utcnow():
        return None
    account = session.get(Account, row.account_id)
    if account is None or account.password_generation != row.generation:
        return None
    if account.status is AccountStatus.SUSPENDED:
        return None
    return principals.principal_of(session, row, account)


def session_row(session: Session, principal: Principal) -> WebSession:
    row = session.get(WebSession, principal.token_hash)
    if row is None:
        raise LoginRefused("web.log_in_first")
    return row


def prune(session: Session, audit_days: int, now: datetime | None = None) -> tuple[int, int]:
    """Delete expired sessions and audit entries older than ``audit_days``: (sessions, entries)."""
    now = now or utcnow()
    sessions = session.execute(delete(WebSession).where(WebSession.expires_at < now))
    entries = session.execute(delete(AuditEntry).where(AuditEntry.at < now - timedelta(days=audit_days)))
    attempts.prune(session, now=now)
    return int(getattr(sessions, "rowcount", 0) or 0), int(getattr(entries, "rowcount", 0) or 0)


def logout(session: Session, principal: Principal, *, ip: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == principal.token_hash))
    audit(session, "logout", True, ip=ip, login=principal.email.lower(), account_id=principal.account_id)
