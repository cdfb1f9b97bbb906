"""The second factor: TOTP (RFC 6238) and one-time recovery codes.

A code is accepted once: the time step it matched is kept and a code of
that step or an earlier one is refused (``verify_and_get_timecode``), so a
code seen over a shoulder or in a proxy log is worth nothing afterwards.
One step either side is accepted for phones whose clock drifts. Recovery
codes are random (50 bits), shown once at enrolment and kept as SHA-256.

Why TOTP and not the SMS codes of the seed's product: docs/second-factor.md.
Callers own the transaction and count attempts in one of their own before
checking (``attempts``), so a wrong code still counts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from pyotp.exceptions import OTPVerificationError
from pyotp.utils import strings_equal
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kalliope_tel import attempts
from kalliope_tel.accounts.models import Account, RecoveryCode
from kalliope_tel.accounts.services import AccountError, end_sessions
from kalliope_tel.db.base import utcnow

ISSUER = "kalliope-tel"
RECOVERY_CODES = 10
# Codes tried per account per window, whoever tries them: 3 steps in 10^6
# are right, so 10 tries in 15 minutes make a guess hopeless.
ALLOWED_TRIES = 10
WINDOW = timedelta(minutes=15)
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off a sheet of paper


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into an app that cannot scan
    uri: str  # otpauth://
    qr_svg: str  # the URI as a QR code, an SVG data: URL


def start_enrolment(session: Session, account: Account) -> Enrolment:
    """A new secret waiting for its first code; the enrolled one (if any)
    stays until that code confirms the new one."""
    account.totp_pending = pyotp.random_base32()
    session.flush()
    uri = pyotp.TOTP(account.totp_pending).provisioning_uri(name=account.email, issuer_name=ISSUER)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False)
    data_url = "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()
    return Enrolment(account.totp_pending, uri, data_url)


def confirm_enrolment(session: Session, account: Account, code: str, now: datetime | None = None) -> list[str]:
    """The first code from the app makes the pending secret the account's;
    returns new recovery codes (the old ones stop working), shown once."""
    if not account.totp_pending:
        raise AccountError("second_factor.no_enrolment")
    step = _step(account.totp_pending, code, now)
    if step is None:
        raise AccountError("second_factor.wrong", field="code")
    account.totp_secret, account.totp_pending, account.totp_last_step = account.totp_pending, "", step
    codes = new_recovery_codes(session, account)
    session.flush()
    return codes


def new_recovery_codes(session: Session, account: Account) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(account_id=account.id, code_hash=_digest(c)) for c in codes)
    session.flush()
    return codes


def count_try(session: Session, account_id: int, now: datetime | None = None) -> None:
    """Count one code tried on the account (in a transaction of its own,
    before the check); ``TooManyAttempts`` past the limit."""
    attempts.attempt(session, _key(account_id), ALLOWED_TRIES, WINDOW, what="attempts.codes", now=now)


def check(session: Session, account: Account, code: str, now: datetime | None = None) -> str:
    """Accept a TOTP code (once) or an unused recovery code (then used up):
    returns "totp" or "recovery"; refused with one reason for both."""
    code = code.strip().replace(" ", "")
    if account.totp_secret and code.isdigit():
        step = _step(account.totp_secret, code, now)
        if step is not None and step > account.totp_last_step:
            account.totp_last_step = step
            attempts.forget(session, _key(account.id))
            session.flush()
            return "totp"
    elif len(code) <= 20:
        digest = _digest(code.lower())
        for row in session.scalars(
            select(RecoveryCode).where(RecoveryCode.account_id == account.id, RecoveryCode.used_at.is_(None))
        ):
            if strings_equal(row.code_hash, digest):
                row.used_at = now or utcnow()
                attempts.forget(session, _key(account.id))
                session.flush()
                return "recovery"
    raise AccountError("second_factor.wrong", field="code")


def recovery_left(session: Session, account: Account) -> int:
    rows = session.scalars(
        select(RecoveryCode.id).where(RecoveryCode.account_id == account.id, RecoveryCode.used_at.is_(None))
    )
    return len(list(rows))


def reset(session: Session, account: Account) -> None:
    """Forget the account's second factor (an administrator's act, logged by
    the caller): it enrols again at its next login; its sessions end."""
    account.totp_secret = account.totp_pending = ""
    account.totp_last_step = 0
    session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    end_sessions(account)
    session.flush()


def _step(secret: str, code: str, now: datetime | None) -> int | None:
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    try:
        return pyotp.TOTP(secret).verify_and_get_timecode(code, for_time=now or utcnow(), valid_window=1)
    except OTPVerificationError:
        return None


def _recovery_code() -> str:
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(5)) for _ in range(2))


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _key(account_id: int) -> str:
    return f"second-factor:{account_id}"
