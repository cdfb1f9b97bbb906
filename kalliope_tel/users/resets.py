"""Password links by mail: a reset (an administrator asks for one) or an
invitation (a new account). A serve node mails it (the one claim/lease
mechanism, the one backoff); the person opens it and chooses a password
(an invited person then enrols a second factor at their first login).

The link carries the token after ``#``: browsers never send a URL's
fragment to a server, so the token is in no request line, proxy log or
Referer; the page posts it in the body. Only the token's SHA-256 is kept to
check it; the token itself stays in the row until the mail is out, then is
wiped. A link works once, for ``VALID`` after it was asked for (an
invitation ``INVITE_VALID``), and a newer one replaces it. Using it ends
the account's sessions (the password changes).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kalliope_tel import catalogue
from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import Account
from kalliope_tel.backoff import Backoff
from kalliope_tel.config import Settings
from kalliope_tel.db import leases
from kalliope_tel.db.base import utcnow
from kalliope_tel.mail.compose import message
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users import services
from kalliope_tel.users.models import LinkKind, PasswordReset, ResetState
from kalliope_tel.users.services import UserError

VALID = timedelta(hours=24)
INVITE_VALID = timedelta(hours=72)
LEASE = timedelta(minutes=2)
SEND_SECONDS = 45.0
MAX_TRIES = 6
RETRIES = Backoff(first=30, cap=1800)
PATH = "/password-reset"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_reset(session: Session, pbx: Pbx, name: str, site: str, lang: str) -> str:
    """Owe PBX user ``name`` a mail with a new link (``site``: the address
    people reach the web at); their earlier links stop working. Returns the
    address the link goes to."""
    user = services.get_user(session, pbx, name)
    request_link(session, user.account, LinkKind.RESET, site, lang)
    return user.email


def request_link(session: Session, account: Account, kind: LinkKind, site: str, lang: str) -> PasswordReset:
    """Owe the account a mail with a new link of ``kind``, replacing its
    earlier links."""
    _replace_open(session, account.id)
    token = secrets.token_urlsafe(32)
    row = PasswordReset(
        account_id=account.id,
        kind=kind,
        token_hash=_digest(token),
        token=token,
        link_base=site.rstrip("/") + PATH,
        lang=lang if lang in catalogue.LANGUAGES else catalogue.DEFAULT,
        expires_at=utcnow() + (INVITE_VALID if kind is LinkKind.INVITE else VALID),
    )
    session.add(row)
    session.flush()
    return row


def _replace_open(session: Session, account_id: int) -> None:
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.account_id == account_id, PasswordReset.state.in_((ResetState.PENDING, ResetState.SENT)))
        .values(state=ResetState.REPLACED, token="")
    )


def complete(session: Session, token: str, password: str) -> Account:
    """Set the password of the link's account; refused (one reason for
    every way a link can be wrong, so a guess learns nothing) unless the
    link is the account's latest, unused and not expired."""
    row = session.scalars(select(PasswordReset).where(PasswordReset.token_hash == _digest(token))).first()
    if row is None or row.state is not ResetState.SENT or row.expires_at <= utcnow():
        raise UserError("reset.invalid")
    account = session.get(Account, row.account_id)
    if account is None:
        raise UserError("reset.invalid")
    accounts.set_password(session, account, password)  # checks the password; ends their sessions
    row.state, row.used_at = ResetState.USED, utcnow()
    session.flush()
    return account


# ------------------------------------------------------------------ the mail owed
@dataclass(frozen=True)
class Claimed:
    id: int
    message: EmailMessage


def compose(settings: Settings, row: PasswordReset, account: Account) -> EmailMessage:
    link = f"{row.link_base}#{row.token}"
    hours = int((INVITE_VALID if row.kind is LinkKind.INVITE else VALID).total_seconds() // 3600)
    params = {"name": account.full_name or account.email, "link": link, "hours": hours}
    what = "invite" if row.kind is LinkKind.INVITE else "reset"
    subject = catalogue.render(row.lang, f"{what}.subject")
    return message(settings.mail_from, account.email, subject, catalogue.render(row.lang, f"{what}.body", params))


def claim(
    session: Session, settings: Settings, node: str, limit: int = 1, now: datetime | None = None
) -> list[Claimed]:
    now = now or utcnow()
    due = [PasswordReset.state == ResetState.PENDING, PasswordReset.next_at <= now]
    rows = leases.claim(session, PasswordReset, due, [PasswordReset.id], limit, node, LEASE, now)
    out = []
    for row in rows:
        account = session.get(Account, row.account_id)
        if account is not None:
            out.append(Claimed(row.id, compose(settings, row, account)))
    return out


def finish(session: Session, reset_id: int, node: str, error: str | None, *, permanent: bool = False) -> bool:
    """Record ``node``'s send; False when the claim is no longer its own."""
    row = leases.held(session, PasswordReset, reset_id, node)
    if row is None or row.state is not ResetState.PENDING:
        return False
    leases.release(row)
    if error is None:
        row.state, row.sent_at, row.error, row.token = ResetState.SENT, utcnow(), "", ""
        return True
    row.tries += 1
    row.error = error[:300]
    again = leases.next_try(row.tries, MAX_TRIES, RETRIES, utcnow(), permanent=permanent)
    if again is None:
        row.state, row.token = ResetState.FAILED, ""
    else:
        row.next_at = again
    return True
