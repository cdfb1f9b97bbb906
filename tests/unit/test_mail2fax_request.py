"""Reading Mail2Fax requests: what the bytes say, or the reason they are refused."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from kalliope_tel.mail2fax import authresults
from kalliope_tel.mail2fax.intake import Refusal, _subject
from kalliope_tel.mail2fax.request import BadMail, attachment_kind, header_fields, parse

PDF = b"%PDF-1.4\n%fake but named .pdf\n"


def _request(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Alice@example.com")
    msg["To"] = headers.pop("To", "fax@office.example")
    msg["Subject"] = headers.pop("Subject", "0551234567@office")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def test_sender_recipients_subject_body_and_attachments_in_order() -> None:
    msg = _request(Message_ID="<req-1@example.com>")
    msg.set_content("FAXPIN:12345\n")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="first.pdf")
    msg.add_attachment(b"PK\x03\x04docx", maintype="application", subtype="octet-stream", filename="second.docx")
    req = parse(msg.as_bytes(), max_bytes=10_000)
    assert req.sender == "Alice@example.com"  # case kept: compared exactly
    assert req.to == ["fax@office.example"] and req.subject == "0551234567@office"
    assert req.text is not None and req.text.strip() == "FAXPIN:12345" and not req.html
    assert [a.name for a in req.attachments] == ["first.pdf", "second.docx"]
    assert req.attachments[0].data == PDF and not req.attachments[0].encrypted
    assert req.message_id == "<req-1@example.com>"


def test_html_only_body_is_seen_as_html() -> None:
    msg = _request()
    msg.set_content("<p>FAXPIN:1</p>", subtype="html")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="a.pdf")
    req = parse(msg.as_bytes(), max_bytes=10_000)
    assert req.text is None and req.html


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            b"From: a@example.com\r\nTo: fax@office.example\r\nSubject: 1\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\nno boundary ever\r\n',
            "malformed MIME",
        ),
        (
            b"From: a@example.com\r\nTo: fax@office.example\r\nSubject: 1\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\ncut',
            "malformed MIME",
        ),
        (
            b"From: a@example.com, b@example.com\r\nTo: fax@office.example\r\nSubject: 1\r\n\r\nx\r\n",
            "exactly one sender",
        ),
        (b"To: fax@office.example\r\nSubject: 1\r\n\r\nx\r\n", "exactly one sender"),
    ],
)
def test_malformed_messages_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(BadMail, match=reason):
        parse(raw, max_bytes=10_000)


def test_deep_nesting_is_refused_without_recursion() -> None:
    depth = 50
    lines = [b"From: a@example.com", b"To: fax@office.example", b"Subject: 1", b"MIME-Version: 1.0"]
    for n in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="b{n}"'.encode(), b"", f"--b{n}".encode()]
    lines += [b"Content-Type: text/plain", b"", b"deep"]
    for n in reversed(range(depth)):
        lines += [f"--b{n}--".encode()]
    with pytest.raises(BadMail, match="deeper than"):
        parse(b"\r\n".join(lines), max_bytes=100_000)


def test_oversized_and_broken_base64() -> None:
    msg = _request()
    msg.set_content("x")
    msg.add_attachment(PDF * 100, maintype="application", subtype="pdf", filename="big.pdf")
    with pytest.raises(BadMail, match="accepts up to"):
        parse(msg.as_bytes(), max_bytes=1000)
    raw = (
        b"From: a@example.com\r\nTo: fax@office.example\r\nSubject: 1\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
        b'--b\r\nContent-Type: application/pdf; name="a.pdf"\r\nContent-Disposition: attachment; filename="a.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBER!!!i0xLjQK*\r\n--b--\r\n"
    )
    with pytest.raises(BadMail, match=r"a\.pdf|malformed"):
        parse(raw, max_bytes=10_000)


def test_headers_of_an_unread_message() -> None:
    raw = b"From: Carol <carol@example.com>\r\nSubject: 123\r\nMessage-ID: <m@x>\r\n\r\n" + b"x" * 50
    assert header_fields(raw) == ("carol@example.com", "123", "<m@x>")


def test_attachment_types_and_encrypted_names() -> None:
    assert attachment_kind("Letter.PDF") == "PDF" and attachment_kind("a.odt") == "ODT"
    with pytest.raises(BadMail, match="unsupported type"):
        attachment_kind("photo.jpg")
    msg = _request()
    msg.set_content("x")
    msg.add_attachment(
        b"-----BEGIN PGP MESSAGE-----", maintype="application", subtype="octet-stream", filename="a.pdf.gpg"
    )
    req = parse(msg.as_bytes(), max_bytes=10_000)
    assert req.attachments == [] and [p.name for p in req.encrypted_parts] == ["a.pdf.gpg"]


def test_inline_logo_is_not_an_attachment() -> None:
    msg = _request()
    msg.set_content("x")
    msg.add_alternative("<img src='cid:logo'>", subtype="html")
    html = msg.get_payload()[1]  # type: ignore[index]
    html.add_related(b"\x89PNG", maintype="image", subtype="png", cid="<logo>")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="a.pdf")
    req = parse(msg.as_bytes(), max_bytes=10_000)
    assert [a.name for a in req.attachments] == ["a.pdf"]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("0551234567", ("0551234567", "")), (" 511@office ", ("511", "office")), ("055 123 45@x", ("05512345", "x"))],
)
def test_subject_is_number_or_number_at_instance(subject: str, expected: tuple[str, str]) -> None:
    assert _subject(subject) == expected


@pytest.mark.parametrize("subject", ["", "fax please", "12a4", "@office"])
def test_subject_without_a_number_is_refused(subject: str) -> None:
    with pytest.raises(Refusal, match="subject"):
        _subject(subject)


@pytest.mark.parametrize(
    ("header", "failed"),
    [
        ("mx.office.example; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com", []),
        ("mx.office.example; spf=fail smtp.mailfrom=example.com", ["spf=fail"]),
        ("mx.office.example; dmarc=fail (p=reject) header.from=example.com", ["dmarc=fail"]),
        ("mx.office.example; dkim=fail header.d=list.other.org; dmarc=pass header.from=example.com", []),
        ("mx.office.example; spf=softfail smtp.mailfrom=example.com", []),
        ("mx.office.example; dkim=fail (bad signature)", ["dkim=fail"]),
        ("", []),
    ],
)
def test_authentication_results(header: str, failed: list[str]) -> None:
    results = authresults.trusted([header], "mx.office.example") or []
    assert authresults.failures(results, "alice@example.com") == failed


@pytest.mark.parametrize(
    ("header", "proof"),
    [
        ("mx.office.example; dmarc=pass header.from=example.com", "dmarc=pass"),
        ("mx.office.example; dkim=pass header.d=mail.example.com; dmarc=none", "dkim=pass"),
        ("mx.office.example; spf=pass smtp.mailfrom=bounce.example.com", "spf=pass"),
        # Not the sender's domain, or no pass: nothing proven.
        ("mx.office.example; dkim=pass header.d=list.other.org; spf=pass smtp.mailfrom=other.org", None),
        ("mx.office.example; spf=softfail smtp.mailfrom=example.com; dkim=none; dmarc=none", None),
        ("mx.office.example; spf=neutral smtp.mailfrom=example.com", None),
        ("mx.office.example; dkim=pass", None),  # a pass that names no domain proves nothing
        # Another server's header, however good it looks: ignored.
        ("forged.example; dmarc=pass header.from=example.com", None),
        ("mx.office.example.evil; dmarc=pass header.from=example.com", None),
    ],
)
def test_what_authenticates_a_sender(header: str, proof: str | None) -> None:
    found = authresults.authenticated(authresults.trusted([header], "mx.office.example") or [], "alice@example.com")
    assert (str(found) if found else None) == proof


def test_only_the_trusted_servers_topmost_header_counts() -> None:
    msg = _request()
    msg["Authentication-Results"] = "mx.office.example 1; dmarc=pass header.from=example.com"
    msg["Authentication-Results"] = "forged.example; dmarc=fail header.from=example.com"
    msg["Authentication-Results"] = "mx.office.example; dmarc=fail header.from=example.com"
    msg.set_content("x")
    headers = parse(msg.as_bytes(), max_bytes=10_000).auth_results
    assert len(headers) == 3
    results = authresults.trusted(headers, "MX.office.example")
    assert [str(r) for r in results or []] == ["dmarc=pass"]
    assert authresults.trusted(headers, "") is None
