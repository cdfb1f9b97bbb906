"""How a Mail2Fax request proves it comes from its sender, for each of the
seed's three modes (None, PIN, PGP), each closed against what a stranger
can write into a mail:

- **None**: the From address alone proves nothing; the receiving mail
  server's verdict does. The box names the server it trusts
  (``trusted_authserv_id``) and the request passes only with that server's
  DMARC pass, or an aligned DKIM or SPF pass (``authresults``).
- **PIN**: guesses are counted per sender and per instance
  (``kalliope_tel.attempts``) before the PIN is compared; past the limit the
  request is refused unchecked.
- **PGP**: the signature must be the user's, the fax number inside what is
  signed (the signed entity's protected Subject, or a line of the signed
  text equal to the Subject), the signature recent, and each signature is
  accepted once (``Mail2FaxSignature``): a copy re-sent, to the same or a
  premium number, is refused.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kalliope_tel import attempts
from kalliope_tel.attempts import TooManyAttempts
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.mail2fax import authresults
from kalliope_tel.mail2fax.models import Mail2FaxBox, Mail2FaxSignature
from kalliope_tel.mail2fax.request import MailRequest

if TYPE_CHECKING:
    from kalliope_tel.mail2fax.pgp import BoxKeyring, Verified

PIN_GUESSES_PER_SENDER = 5
PIN_GUESSES_PER_INSTANCE = 20
PIN_WINDOW = timedelta(hours=1)
SIGNATURE_MAX_AGE = timedelta(days=7)


class Unproven(Exception):
    """The request does not prove its sender; the message says why."""


@dataclass(frozen=True)
class Sender:
    user_id: int
    name: str
    email: str
    pgp_key: str
    pgp_fingerprint: str


def signed_by(signature: Verified | None, user: Sender) -> Verified | None:
    """``signature`` when it is a valid one by ``user``'s key, else None."""
    if (
        signature is not None
        and signature.valid
        and bool(user.pgp_fingerprint)
        and signature.fingerprint.upper() == user.pgp_fingerprint.upper()
    ):
        return signature
    return None


def check_verdicts(box: Mail2FaxBox, request: MailRequest) -> list[authresults.Result] | None:
    """The trusted server's results; refuses a request whose checks failed
    for the sender's domain, whatever the instance's mode."""
    results = authresults.trusted(request.auth_results, box.trusted_authserv_id)
    failed = authresults.failures(results or [], request.sender)
    if failed:
        raise Unproven(f"the receiving mail server could not authenticate the sender ({', '.join(failed)})")
    return results


def by_address(box: Mail2FaxBox, request: MailRequest, results: list[authresults.Result] | None) -> None:
    """Mode None: the trusted receiving server vouched for the From address."""
    if not box.trusted_authserv_id:
        raise Unproven(
            f"the box {box.address} trusts no receiving mail server yet (its trusted authserv-id is unset), so the "
            "sender's address proves nothing: ask the administrator, or use an instance with a PIN or PGP"
        )
    if authresults.authenticated(results or [], request.sender) is None:
        raise Unproven(
            f"the receiving mail server {box.trusted_authserv_id} did not authenticate the sender "
            f"({authresults.summary(results)}); a DMARC, DKIM or SPF pass for the sender's domain is needed"
        )


def by_pin(sessions: sessionmaker[Session], pbx_id: int, instance_id: int, pin: str, request: MailRequest) -> None:
    if not pin:
        raise Unproven("the fax instance asks for a PIN but has none set: ask the administrator")
    if request.text is None:
        if request.html:
            raise Unproven("the PIN must be in a plain-text body (FAXPIN:<pin>); this message has only HTML")
        raise Unproven("no PIN: the body must be FAXPIN:<pin>")
    given = request.text.strip()
    if not given.startswith("FAXPIN:"):
        raise Unproven("no PIN: the plain-text body must contain only FAXPIN:<pin>")
    sender_key = f"m2f-pin:sender:{pbx_id}:{request.sender}"
    try:
        with transaction(sessions) as session:  # counted before compared, on every node alike
            attempts.attempt(session, sender_key, PIN_GUESSES_PER_SENDER, PIN_WINDOW, what="attempts.pins")
            attempts.attempt(session, f"m2f-pin:instance:{instance_id}", PIN_GUESSES_PER_INSTANCE, PIN_WINDOW,
                             what="attempts.pins_instance")  # fmt: skip
    except TooManyAttempts as exc:
        raise Unproven(f"{exc}; the PIN was not checked") from None
    if not hmac.compare_digest(given.removeprefix("FAXPIN:").strip().encode(), pin.encode()):
        raise Unproven("wrong PIN")
    with transaction(sessions) as session:
        attempts.forget(session, sender_key)


def by_signature(
    session: Session,
    pbx_id: int,
    request: MailRequest,
    user: Sender,
    signature: Verified | None,
    keyring: Callable[[], BoxKeyring],
    now: datetime | None = None,
) -> Verified:
    """Mode PGP: the user's valid, recent, unused signature over the
    destination; returns it (its digest goes in with the job)."""
    if not user.pgp_fingerprint:
        raise Unproven(f"the fax instance asks for a PGP signature but user {user.name} has no PGP key")
    if signature is None and request.signed is not None:
        box_keys = keyring()
        box_keys.trust_sender(user.pgp_key)
        signature = signed_by(box_keys.verify_detached(*request.signed), user)
    if signature is None:
        raise Unproven(f"the request is not signed with the PGP key of {user.email}")
    _destination_signed(request)
    now = now or utcnow()
    signed_at = datetime.fromtimestamp(signature.signed_at, UTC)
    if now - signed_at > SIGNATURE_MAX_AGE:
        raise Unproven(f"the request was signed on {signed_at:%Y-%m-%d}, more than {SIGNATURE_MAX_AGE.days} days ago: "
                       "sign a new one")  # fmt: skip
    used = session.scalar(
        select(Mail2FaxSignature.id).where(
            Mail2FaxSignature.pbx_id == pbx_id, Mail2FaxSignature.digest == signature.digest()
        )
    )
    if used is not None:
        raise Unproven("this signed request was used already: a signature sends one fax; sign a new request")
    return signature


def spend(session: Session, pbx_id: int, signature: Verified, request_id: int) -> None:
    """Record ``signature`` as used, in the job's transaction (a second use
    of it then fails on the unique key even when two nodes race)."""
    session.add(
        Mail2FaxSignature(
            pbx_id=pbx_id,
            digest=signature.digest(),
            signed_at=datetime.fromtimestamp(signature.signed_at, UTC),
            request_id=request_id,
        )
    )
    session.flush()


def _destination_signed(request: MailRequest) -> None:
    subject = _plain(request.subject)
    if request.inner_subject is not None:
        if _plain(request.inner_subject) != subject:
            raise Unproven(
                f"the Subject was changed after signing: the signed request is for {request.inner_subject!r}"
            )
        return
    if request.inner_text and request.text and any(_plain(line) == subject for line in request.text.splitlines()):
        return
    raise Unproven(
        "the fax number is not inside what is signed: sign a protected Subject (OpenPGP mail clients add it) or "
        "write the Subject again as a line of the signed text"
    )


def _plain(text: str) -> str:
    return "".join(text.split()).lower()
