"""One Mail2Fax request, from the message's bytes to a queued fax job or a
refusal, as the KalliopePBX documentation reads it:

- the sender (From) must be exactly (case-sensitive) the e-mail of a user; an
  unknown sender is dropped without a reply (no backscatter) and logged;
- TO must be the box's address;
- SUBJECT is the number, or ``number@instance``; without an instance, the
  first instance linked to the box sends it;
- the user needs the sending permission on that instance, and the number
  must be allowed by the instance's routing class;
- authentication per instance: none, PIN (the plain-text body is exactly
  ``FAXPIN:<pin>``) or PGP signature (by the user's key); with request
  encryption, every attachment must arrive encrypted to the box's key;
- attachments PDF, DOC, DOCX, ODT, sent in order as one fax.

The request row (keyed by box, UIDVALIDITY, UID), the job and the mail to the
sender are written in one transaction: a message is handled once even when
two nodes or a restarted node read it again. Documents are converted before
that transaction, outside it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kalliope_tel.db.engine import transaction
from kalliope_tel.fax import conversion
from kalliope_tel.fax.conversion import Converter
from kalliope_tel.fax.models import DeliveryKind, Direction, FaxDelivery, FaxInstance, Mail2FaxAuth, Mail2FaxEncryption
from kalliope_tel.files import safe_file_name
from kalliope_tel.mail2fax import authresults, proofs
from kalliope_tel.mail2fax.models import Mail2FaxBox, Mail2FaxRequest, Outcome
from kalliope_tel.mail2fax.proofs import Sender
from kalliope_tel.mail2fax.request import BadMail, MailRequest, attachment_kind, header_fields, parse

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from kalliope_tel.mail2fax.pgp import BoxKeyring, Verified
    from kalliope_tel.tenancy.models import Pbx

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Item:
    """A message on the server: where it is and how big."""

    uidvalidity: int
    uid: str
    size: int


@dataclass(frozen=True)
class Handled:
    request_id: int | None  # None: another node recorded it first
    outcome: Outcome
    reason: str = ""
    job_id: int | None = None


class Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Context:
    """What is known of the request so far (for its ledger row and reply)."""

    sender: str = ""
    subject: str = ""
    message_id: str = ""
    user: Sender | None = None
    signature: Verified | None = None  # a valid one by the user's key
    spend_signature: bool = False  # PGP mode: the signature is used up by the job
    notes: list[str] = field(default_factory=list)


class Intake:
    def __init__(
        self, sessions: sessionmaker[Session], data_dir: Path, node: str, converter: Converter | None = None
    ) -> None:
        self.sessions = sessions
        self.data_dir = data_dir
        self.node = node
        self.converter = converter or conversion.converter()

    # ------------------------------------------------------------ ledger
    def recorded(self, box_id: int, item: Item) -> Mail2FaxRequest | None:
        with transaction(self.sessions) as session:
            row = session.scalars(
                select(Mail2FaxRequest).where(
                    Mail2FaxRequest.box_id == box_id,
                    Mail2FaxRequest.uidvalidity == item.uidvalidity,
                    Mail2FaxRequest.uid == item.uid,
                )
            ).first()
            if row is not None:
                session.expunge(row)
            return row

    def settled(self, request_id: int) -> None:
        with transaction(self.sessions) as session:
            row = session.get(Mail2FaxRequest, request_id)
            if row is not None:
                row.settled = True

    # ------------------------------------------------------------ one request
    def handle(self, box_id: int, item: Item, raw: bytes | None, headers: bytes = b"") -> Handled:
        """``raw`` None: the message is over the box's size limit and only
        its ``headers`` were fetched."""
        ctx = _Context()
        workdir = Path(tempfile.mkdtemp(prefix="m2f-", dir=self._work_root()))
        try:
            box = self._box(box_id)
            try:
                job = self._read(box, item, raw, headers, ctx, workdir)
            except Refusal as refusal:
                return self._refuse(box, item, ctx, refusal.reason)
            return job
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def give_up(self, box_id: int, item: Item, headers: bytes, reason: str) -> Handled:
        """Refuse a message that keeps failing with an internal error, so it
        leaves the box instead of being retried forever (the reason says why)."""
        ctx = _Context()
        ctx.sender, ctx.subject, ctx.message_id = _safe_header_fields(headers)
        box = self._box(box_id)
        with contextlib.suppress(Refusal):
            self._identify(box, ctx)
        return self._refuse(box, item, ctx, reason)

    def _box(self, box_id: int) -> Mail2FaxBox:
        """The box's row, detached: read once per request."""
        with transaction(self.sessions) as session:
            box = session.get(Mail2FaxBox, box_id)
            if box is None:
                raise RuntimeError("the box was removed")
            session.expunge(box)
            return box

    def _work_root(self) -> Path:
        root = self.data_dir / "mail2fax" / "work"
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return root

    def _read(
        self, box: Mail2FaxBox, item: Item, raw: bytes | None, headers: bytes, ctx: _Context, workdir: Path
    ) -> Handled:
        if raw is None:
            ctx.sender, ctx.subject, ctx.message_id = header_fields(headers)
            self._identify(box, ctx)
            raise Refusal(f"the message is {item.size:,} bytes; this box accepts up to {box.max_bytes:,}")
        try:
            request = parse(raw, max_bytes=box.max_bytes)
        except BadMail as exc:
            ctx.sender, ctx.subject, ctx.message_id = _safe_header_fields(raw)
            self._identify(box, ctx)
            raise Refusal(str(exc)) from None
        ctx.sender, ctx.subject, ctx.message_id = request.sender, request.subject, request.message_id
        self._identify(box, ctx)
        user = ctx.user
        assert user is not None
        try:
            verdicts = proofs.check_verdicts(box, request)
        except proofs.Unproven as exc:
            raise Refusal(str(exc)) from None
        if box.address not in request.to:
            raise Refusal(f"the request must be addressed (To) to the box {box.address}")
        keyring = self._keyring(box) if _needs_keyring(request) else None
        if keyring is not None:
            self._decrypt(keyring, request, ctx)
        number, instance_name = _subject(request.subject)
        with transaction(self.sessions) as session:
            instance = _instance(session, box, instance_name)
            pin, auth, encryption = instance.mail2fax_pin, instance.mail2fax_auth, instance.mail2fax_encryption
            instance_name, instance_id = instance.name, instance.id
            _check_sending(session, box, instance, user.user_id, number)
        try:
            self._prove(box, instance_id, auth, pin, request, ctx, keyring, verdicts)
        except proofs.Unproven as exc:
            raise Refusal(str(exc)) from None
        files = _attachments(request, encryption, workdir)
        return self._queue(box, item, ctx, request, instance_name, number, files)

    def _prove(
        self,
        box: Mail2FaxBox,
        instance_id: int,
        auth: Mail2FaxAuth,
        pin: str,
        request: MailRequest,
        ctx: _Context,
        keyring: BoxKeyring | None,
        verdicts: list[authresults.Result] | None,
    ) -> None:
        """The instance's proof of the sender (``proofs``), or ``Unproven``."""
        assert ctx.user is not None
        if auth is Mail2FaxAuth.NONE:
            proofs.by_address(box, request, verdicts)
        elif auth is Mail2FaxAuth.PIN:
            proofs.by_pin(self.sessions, box.pbx_id, instance_id, pin, request)
        else:
            with transaction(self.sessions) as session:
                ctx.signature = proofs.by_signature(
                    session, box.pbx_id, request, ctx.user, ctx.signature, lambda: keyring or self._keyring(box)
                )
            ctx.spend_signature = True

    def _identify(self, box: Mail2FaxBox, ctx: _Context) -> None:
        from kalliope_tel.users.services import find_by_email

        with transaction(self.sessions) as session:
            user = find_by_email(session, box.pbx_id, ctx.sender) if ctx.sender else None
            if user is not None:
                ctx.user = Sender(user.id, user.name, user.email, user.pgp_public_key, user.pgp_fingerprint)
        if ctx.user is None:
            raise _Drop()

    def _keyring(self, box: Mail2FaxBox) -> BoxKeyring:
        from kalliope_tel.mail2fax.pgp import BoxKeyring, PgpError

        try:
            return BoxKeyring(self.data_dir / "mail2fax" / "gnupg", box.id, box.pgp_key, box.pgp_fingerprint)
        except PgpError as exc:
            raise Refusal(str(exc)) from None

    def _decrypt(self, keyring: BoxKeyring, request: MailRequest, ctx: _Context) -> None:
        from kalliope_tel.mail2fax.pgp import PgpError
        from kalliope_tel.mail2fax.request import Attachment, read_decrypted_entity

        assert ctx.user is not None
        keyring.trust_sender(ctx.user.pgp_key)
        try:
            if request.pgp_mime is not None:
                clear, signature = keyring.decrypt(request.pgp_mime, "the request")
                ctx.signature = proofs.signed_by(signature, ctx.user)
                read_decrypted_entity(request, clear)
            for part in request.encrypted_parts:
                clear, signature = keyring.decrypt(part.data, f"attachment {part.name!r}")
                ctx.signature = ctx.signature or proofs.signed_by(signature, ctx.user)
                name = part.name
                for suffix in (".pgp", ".gpg", ".asc"):
                    name = name.removesuffix(suffix)
                request.attachments.append(Attachment(name, clear, encrypted=True))
            request.encrypted_parts.clear()
            if request.text and "-----BEGIN PGP MESSAGE-----" in request.text:
                clear, signature = keyring.decrypt(request.text.encode(), "the text body")
                ctx.signature = ctx.signature or proofs.signed_by(signature, ctx.user)
                request.text = clear.decode("utf-8", "replace")
        except PgpError as exc:
            raise Refusal(str(exc)) from None
        except BadMail as exc:
            raise Refusal(str(exc)) from None

    def _queue(
        self,
        box: Mail2FaxBox,
        item: Item,
        ctx: _Context,
        request: MailRequest,
        instance_name: str,
        number: str,
        files: list[Path],
    ) -> Handled:
        from kalliope_tel.fax import jobs
        from kalliope_tel.fax.documents import DocumentRefused
        from kalliope_tel.fax.exceptions import FaxError
        from kalliope_tel.tenancy.models import Pbx
        from kalliope_tel.users.models import User

        try:
            # A mail waits its turn for a converter: its box's thread is its own.
            prepared = self.converter.prepare(self.data_dir, files, wait=True)
        except DocumentRefused as exc:
            raise Refusal(str(exc)) from None
        assert ctx.user is not None
        try:
            with transaction(self.sessions) as session:
                pbx = session.get(Pbx, box.pbx_id)
                user = session.get(User, ctx.user.user_id)
                assert pbx is not None
                try:
                    job = jobs.submit(
                        session,
                        pbx,
                        instance_name,
                        user,
                        number,
                        document=prepared.document,
                        pages=prepared.pages,
                        sources=[f.name for f in files],
                        origin="mail2fax",
                    )
                except FaxError as exc:
                    raise Refusal(str(exc)) from None
                row = self._ledger(session, box, item, ctx, Outcome.ACCEPTED, "", job.id)
                if ctx.spend_signature and ctx.signature is not None:
                    proofs.spend(session, pbx.id, ctx.signature, row.id)
                prepared.bind(self.data_dir, pbx.slug, job)
                serial = _serial(session, pbx)
                _owe_notice(
                    session,
                    pbx,
                    row,
                    ctx.user.email,
                    subject=f"[{serial}] FAX request accepted: {job.pages} page(s) to {number}",
                    body=(
                        f"Your fax request {ctx.subject!r} was accepted as fax job {job.id}:\n"
                        f"{job.pages} page(s) to {number} through fax instance {instance_name}.\n"
                        "You will receive the transmission report once it is sent or has failed.\n"
                    ),
                    in_reply_to=ctx.message_id,
                )
                handled = Handled(row.id, Outcome.ACCEPTED, "", job.id)
        except IntegrityError:
            shutil.rmtree(prepared.workdir, ignore_errors=True)
            return Handled(None, Outcome.ACCEPTED, "recorded by another node")
        except BaseException:
            shutil.rmtree(prepared.workdir, ignore_errors=True)
            raise
        log.info(
            "mail2fax.accepted", box=box.name, uid=item.uid, job=handled.job_id, pages=prepared.pages, number=number
        )
        return handled

    def _refuse(self, box: Mail2FaxBox, item: Item, ctx: _Context, reason: str) -> Handled:
        from kalliope_tel.tenancy.models import Pbx

        dropped = ctx.user is None
        outcome = Outcome.DROPPED if dropped else Outcome.REFUSED
        if dropped:
            reason = "the sender is not a known user" + (f" ({reason})" if reason else "")
        try:
            with transaction(self.sessions) as session:
                row = self._ledger(session, box, item, ctx, outcome, reason, None)
                if ctx.user is not None:
                    pbx = session.get(Pbx, box.pbx_id)
                    assert pbx is not None
                    _owe_notice(
                        session,
                        pbx,
                        row,
                        ctx.user.email,
                        subject=f"[{_serial(session, pbx)}] FAX request refused: {ctx.subject or '(no subject)'}",
                        body=(
                            f"Your fax request {ctx.subject!r} to {box.address} was refused:\n{reason}\n\n"
                            "Nothing was sent. Correct the request and send it again.\n"
                        ),
                        in_reply_to=ctx.message_id,
                    )
                request_id = row.id
        except IntegrityError:
            return Handled(None, outcome, reason)
        event = "mail2fax.dropped" if dropped else "mail2fax.refused"
        log.warning(event, box=box.name, uid=item.uid, sender=ctx.sender, reason=reason)
        return Handled(request_id, outcome, reason)

    def _ledger(
        self,
        session: Session,
        box: Mail2FaxBox,
        item: Item,
        ctx: _Context,
        outcome: Outcome,
        reason: str,
        job_id: int | None,
    ) -> Mail2FaxRequest:
        from kalliope_tel.mail.addresses import header_text

        row = Mail2FaxRequest(
            pbx_id=box.pbx_id,
            box_id=box.id,
            uidvalidity=item.uidvalidity,
            uid=item.uid,
            message_id=header_text(ctx.message_id, 300),
            sender=header_text(ctx.sender, 254),
            subject=header_text(ctx.subject, 300),
            size=item.size,
            outcome=outcome,
            reason=reason[:300],
            job_id=job_id,
            node=self.node,
        )
        session.add(row)
        session.flush()  # the unique key speaks here: IntegrityError if handled already
        return row


class _Drop(Refusal):
    """Unknown sender: recorded and logged, never answered."""

    def __init__(self) -> None:
        super().__init__("")


# ---------------------------------------------------------------- rules
def _safe_header_fields(raw: bytes) -> tuple[str, str, str]:
    try:
        return header_fields(raw)
    except Exception:
        return "", "", ""


def _needs_keyring(request: MailRequest) -> bool:
    return (
        request.pgp_mime is not None
        or bool(request.encrypted_parts)
        or request.signed is not None
        or bool(request.text and "-----BEGIN PGP MESSAGE-----" in request.text)
    )


def _subject(subject: str) -> tuple[str, str]:
    """(number, instance name or "") from ``number`` or ``number@instance``."""
    text = subject.strip()
    number, _, instance = text.partition("@")
    number = "".join(number.split())
    if not number:
        raise Refusal("the subject must be the fax number, or number@instance")
    if not number.lstrip("+").isdigit() or len(number) > 32:
        raise Refusal(f"the subject {text!r} is not a fax number (digits, or number@instance)")
    return number, instance.strip()


def _instance(session: Session, box: Mail2FaxBox, name: str) -> FaxInstance:
    from kalliope_tel.mail2fax.boxes import linked_instances

    linked: list[FaxInstance] = linked_instances(session, box)
    if not linked:
        raise Refusal(f"no fax instance uses the box {box.address}")
    if not name:
        return linked[0]
    for instance in linked:
        if instance.name == name:
            return instance
    raise Refusal(f"unknown fax instance {name!r} for the box {box.address}")


def _check_sending(session: Session, box: Mail2FaxBox, instance: FaxInstance, user_id: int, number: str) -> None:
    from kalliope_tel.fax import jobs
    from kalliope_tel.fax.exceptions import FaxError
    from kalliope_tel.tenancy.models import Pbx
    from kalliope_tel.users.models import User

    pbx = session.get(Pbx, box.pbx_id)
    user = session.get(User, user_id)
    assert pbx is not None and user is not None
    try:
        values = jobs.check_sender(session, pbx, instance, user)
        jobs.check_number(session, pbx, values, number)
    except FaxError as exc:
        raise Refusal(str(exc)) from None


def _attachments(request: MailRequest, encryption: Mail2FaxEncryption, workdir: Path) -> list[Path]:
    if request.encrypted_parts:  # the box could not decrypt them (no keyring was needed?)
        raise Refusal("encrypted attachments could not be decrypted")
    if not request.attachments:
        raise Refusal("no attachment: attach the document to fax (PDF, DOC, DOCX or ODT)")
    if encryption is Mail2FaxEncryption.PGP and not all(a.encrypted for a in request.attachments):
        raise Refusal("this fax instance accepts only requests encrypted to the box's PGP key")
    files = []
    for n, attachment in enumerate(request.attachments, start=1):
        try:
            attachment_kind(attachment.name)
        except BadMail as exc:
            raise Refusal(str(exc)) from None
        folder = workdir / f"{n:02d}"  # one folder each: the sender's file names stay as they were
        folder.mkdir()
        path = folder / safe_file_name(attachment.name)
        path.write_bytes(attachment.data)
        files.append(path)
    return files


def _serial(session: Session, pbx: Pbx) -> str:
    """The [tag] of the fax service's mail subjects, for the replies too."""
    from kalliope_tel.fax.config import get_settings
    from kalliope_tel.fax.notify import subject_tag

    return subject_tag(get_settings(session, pbx).serial_number, pbx.slug)


def _owe_notice(
    session: Session, pbx: Pbx, row: Mail2FaxRequest, to: str, *, subject: str, body: str, in_reply_to: str
) -> None:
    session.add(
        FaxDelivery(
            pbx_id=pbx.id,
            kind=DeliveryKind.NOTICE,
            direction=Direction.OUTBOUND,
            fax_id=row.id,  # the mail2fax_request it answers
            target=to,
            payload={"subject": subject, "body": body, "in_reply_to": in_reply_to},
        )
    )
