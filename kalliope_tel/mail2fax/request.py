"""A Mail2Fax request as read from the raw message: sender, recipients,
subject, plain-text and HTML bodies, attachments, PGP/MIME structure and the
receiving server's Authentication-Results. No database, no network, no GnuPG
here: only what the bytes say, or ``BadMail`` with the reason a sender can
act on.

The parser is strict where a lenient one would fax the wrong thing: a
multipart without its boundaries, a truncated message, broken base64 or
nesting deeper than any mail client makes are refused, never guessed at.
"""

from __future__ import annotations

import email.errors
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

from kalliope_tel.errors import KalliopeError
from kalliope_tel.files import safe_file_name

MAX_DEPTH = 8  # mail clients nest 3-4 levels (mixed > related > alternative)
MAX_PARTS = 100
SUPPORTED = {".pdf": "PDF", ".doc": "DOC", ".docx": "DOCX", ".odt": "ODT"}
PGP_SUFFIXES = (".pgp", ".gpg", ".asc")

# Defects after which the message is not what its sender wrote.
_FATAL_DEFECTS = (
    email.errors.NoBoundaryInMultipartDefect,
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
    email.errors.InvalidMultipartContentTransferEncodingDefect,
    email.errors.InvalidBase64CharactersDefect,
    email.errors.InvalidBase64LengthDefect,
    email.errors.MissingHeaderBodySeparatorDefect,
)


class BadMail(KalliopeError):
    """The request cannot be read; the message is the reason for the sender."""


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    encrypted: bool  # arrived PGP-encrypted (a .pgp/.gpg/.asc file, or inside PGP/MIME)


@dataclass
class MailRequest:
    sender: str  # the From address exactly as written (compared case-sensitively)
    to: list[str]
    subject: str
    message_id: str
    text: str | None = None  # the plain-text body, if any
    html: bool = False  # an HTML body was present
    attachments: list[Attachment] = field(default_factory=list)
    encrypted_parts: list[Attachment] = field(default_factory=list)  # still to decrypt (box key)
    pgp_mime: bytes | None = None  # the encrypted payload of a multipart/encrypted request
    signed: tuple[bytes, bytes] | None = None  # PGP/MIME: (signed bytes, detached signature)
    # Every Authentication-Results header, topmost (the last added) first.
    auth_results: list[str] = field(default_factory=list)
    # The Subject inside the signed (or encrypted) entity: RFC "protected
    # headers", which OpenPGP clients write; None when it carries none.
    inner_subject: str | None = None
    # The plain-text body came from inside the signed or encrypted entity.
    inner_text: bool = False


def header_fields(raw: bytes) -> tuple[str, str, str]:
    """(From address, Subject, Message-ID) from the headers alone, for a
    message refused before it is read whole (oversized), so the reply can go
    to a known user."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    msg = BytesParser(policy=policy.default).parsebytes(head + b"\r\n\r\n", headersonly=True)
    senders = getaddresses([str(v) for v in msg.get_all("From", [])])
    sender = senders[0][1] if len(senders) == 1 else ""
    return sender, _text(msg.get("Subject")), _text(msg.get("Message-ID"))


def parse(raw: bytes, *, max_bytes: int) -> MailRequest:
    if len(raw) > max_bytes:
        raise BadMail(f"the message is {len(raw):,} bytes; this box accepts up to {max_bytes:,}")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything it raises is a broken message
        raise BadMail(f"the message cannot be read as MIME ({type(exc).__name__})") from None
    request = MailRequest(
        sender=_one_sender(msg),
        to=_addresses(msg, "To"),
        subject=_text(msg.get("Subject")),
        message_id=_text(msg.get("Message-ID"))[:300],
        auth_results=[_text(v) for v in msg.get_all("Authentication-Results", [])],  # in order: topmost first
    )
    _check_shape(msg)
    _read_entity(msg, request, raw)
    return request


def read_decrypted_entity(request: MailRequest, clear: bytes) -> None:
    """The cleartext of a PGP/MIME request is a MIME entity: read its parts
    (and its protected Subject, if the client put one there)."""
    try:
        inner = BytesParser(policy=policy.default).parsebytes(clear)
    except Exception:
        raise BadMail("the decrypted request is not a MIME entity") from None
    _check_shape(inner)
    if inner.get("Subject"):
        request.subject = request.inner_subject = _text(inner.get("Subject"))
    request.text = None  # the encrypted entity's text, not anything outside it
    request.inner_text = True
    before = len(request.attachments)
    _read_entity(inner, request, clear, inside_pgp=True)
    for n in range(before, len(request.attachments)):
        a = request.attachments[n]
        request.attachments[n] = Attachment(a.name, a.data, encrypted=True)


def attachment_kind(name: str) -> str:
    """'PDF', 'DOC', 'DOCX' or 'ODT' by the file name; BadMail otherwise."""
    lower = name.lower()
    for suffix, kind in SUPPORTED.items():
        if lower.endswith(suffix):
            return kind
    raise BadMail(f"attachment {name!r}: unsupported type (PDF, DOC, DOCX or ODT are accepted)")


# ---------------------------------------------------------------- helpers
def _text(value: object) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split())


def _one_sender(msg: EmailMessage) -> str:
    values = msg.get_all("From", [])
    pairs = getaddresses([str(v) for v in values])
    if len(values) != 1 or len(pairs) != 1 or "@" not in pairs[0][1]:
        raise BadMail("the message must have exactly one sender address in From")
    return pairs[0][1]


def _addresses(msg: EmailMessage, name: str) -> list[str]:
    return [addr for _, addr in getaddresses([str(v) for v in msg.get_all(name, [])]) if addr]


def _check_shape(msg: Message) -> None:
    """Depth, part count and fatal defects, walked without recursion."""
    stack: list[tuple[Message, int]] = [(msg, 1)]
    parts = 0
    while stack:
        part, depth = stack.pop()
        parts += 1
        if depth > MAX_DEPTH:
            raise BadMail(f"the message nests MIME parts deeper than {MAX_DEPTH} levels")
        if parts > MAX_PARTS:
            raise BadMail(f"the message has more than {MAX_PARTS} MIME parts")
        for defect in part.defects:
            if isinstance(defect, _FATAL_DEFECTS):
                raise BadMail(f"malformed MIME: {_defect_text(defect)}")
        if part.is_multipart():
            payload = part.get_payload()
            if not isinstance(payload, list):
                raise BadMail("malformed MIME: a multipart part without parts")
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def _defect_text(defect: Exception) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _read_entity(msg: EmailMessage, request: MailRequest, raw: bytes, inside_pgp: bool = False) -> None:
    ctype = msg.get_content_type()
    if ctype == "multipart/encrypted":
        if inside_pgp:
            raise BadMail("malformed PGP/MIME: an encrypted part inside an encrypted part")
        request.pgp_mime = _pgp_mime_payload(msg)
        return
    if ctype == "multipart/signed":
        request.signed = _signed_parts(msg, raw)
        if request.signed is not None:
            _read_protected_subject(request, request.signed[0])
    for part in msg.walk():
        if part.is_multipart():
            continue
        _read_leaf(part, request)


def _read_leaf(part: EmailMessage, request: MailRequest) -> None:
    ctype = part.get_content_type()
    name = part.get_filename() or ""
    disposition = part.get_content_disposition()
    if ctype == "application/pgp-signature":
        return  # the detached signature of multipart/signed, taken above
    if not name and disposition != "attachment" and part.get_content_maintype() == "text":
        if ctype == "text/plain" and request.text is None:
            request.text = _decoded_text(part)
        elif ctype == "text/html":
            request.html = True
        return
    if not name and disposition == "inline" and part.get("Content-ID"):
        return  # an image embedded in the HTML body (a logo in a signature)
    data = _decoded(part)
    name = safe_file_name(name or "attachment", default="attachment")
    if name.lower().endswith(PGP_SUFFIXES) or ctype == "application/pgp-encrypted":
        request.encrypted_parts.append(Attachment(name, data, encrypted=True))
    else:
        request.attachments.append(Attachment(name, data, encrypted=False))


def _decoded(part: EmailMessage) -> bytes:
    payload = part.get_payload(decode=True)
    for defect in part.defects:
        if isinstance(defect, (_FATAL_DEFECTS, email.errors.InvalidBase64PaddingDefect)):
            raise BadMail(f"attachment {part.get_filename() or '?'!r}: damaged encoding ({_defect_text(defect)})")
    if not isinstance(payload, bytes):
        raise BadMail(f"attachment {part.get_filename() or '?'!r}: no content")
    return payload


def _decoded_text(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError):
        raise BadMail("the text body's character set cannot be read") from None


def _parts(msg: Message) -> list[Message]:
    payload = msg.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _pgp_mime_payload(msg: EmailMessage) -> bytes:
    """RFC 3156 section 4: a version part, then the OpenPGP message."""
    parts = _parts(msg)
    if (
        msg.get_param("protocol") != "application/pgp-encrypted"
        or len(parts) != 2
        or parts[0].get_content_type() != "application/pgp-encrypted"
    ):
        raise BadMail("malformed PGP/MIME: multipart/encrypted needs a version part and the encrypted data")
    data = parts[1].get_payload(decode=True)
    if not isinstance(data, bytes) or b"BEGIN PGP MESSAGE" not in data[:200]:
        raise BadMail("malformed PGP/MIME: the encrypted part holds no OpenPGP message")
    return data


def _read_protected_subject(request: MailRequest, signed: bytes) -> None:
    """The signed entity's own headers: a Subject there is signed; every
    leaf of a multipart/signed is inside it but the signature."""
    head = BytesParser(policy=policy.default).parsebytes(signed, headersonly=True)
    if head.get("Subject"):
        request.inner_subject = _text(head.get("Subject"))
    request.inner_text = True


def _signed_parts(msg: EmailMessage, raw: bytes) -> tuple[bytes, bytes] | None:
    """RFC 3156 section 5: the first part's exact bytes (headers included,
    CRLF line ends, without the CRLF before the boundary) and the signature."""
    parts = _parts(msg)
    boundary = msg.get_boundary()
    if msg.get_param("protocol") != "application/pgp-signature" or len(parts) != 2 or boundary is None:
        return None
    signature = parts[1].get_payload(decode=True)
    if not isinstance(signature, bytes):
        return None
    text = re.sub(rb"\r?\n", b"\r\n", raw)
    delimiter = b"\r\n--" + boundary.encode("ascii", "replace")
    start = text.find(delimiter + b"\r\n")
    if start < 0:
        return None
    start += len(delimiter) + 2
    end = text.find(delimiter, start)
    if end < 0:
        return None
    return text[start:end], signature
