"""Mail2Fax test parts: a real Dovecot on loopback (IMAPS, POP3S, LMTP),
GnuPG keys made by the test, requests as mail clients write them, and the
office of the fax service tests with a box linked to its instance."""

from __future__ import annotations

import imaplib
import secrets
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from pathlib import Path
from typing import Any

import gnupg
import pytest

from kalliope_tel.db.engine import transaction
from kalliope_tel.fax import config
from kalliope_tel.lab import dovecot as lab_dovecot
from kalliope_tel.lab.dovecot import LabDovecot
from kalliope_tel.mail2fax.boxes import add_box
from kalliope_tel.tenancy.services import get_pbx
from tests.fax_service_support import Office, configure_office

# Every Mail2Fax test module: integration, skipped without a lab Dovecot, and
# the gpg-agents its keys started stopped at its end.
MARKS = [
    pytest.mark.integration,
    pytest.mark.skipif(lab_dovecot.available() is not None, reason=str(lab_dovecot.available())),
    pytest.mark.usefixtures("stop_gpg_agents_after"),
]
BOX = "fax@office.example"
ALICE = "alice@example.com"  # may send and receive on 'office' (configure_office)
# The receiving mail server the lab boxes trust (its authserv-id), and whose verdict request() writes.
LAB_MX = "mx.lab.test"


def stop_gpg_agents(under: Path) -> None:
    """gpg-agent daemons started for GnuPG homes under ``under`` (the test's
    keys, and the boxes' keyrings in its data directory) end with the test."""
    import os
    import shutil
    import tempfile

    subprocess.run(["pkill", "-f", f"gpg-agent --homedir {under}"], check=False, capture_output=True)
    for marker in (Path(tempfile.gettempdir()) / f"kt-gpg-{os.getuid()}").glob("*/root"):
        if marker.read_text().startswith(str(under)):
            subprocess.run(["pkill", "-f", f"gpg-agent --homedir {marker.parent}"], check=False, capture_output=True)
            shutil.rmtree(marker.parent, ignore_errors=True)


@contextmanager
def dovecot(folder: Path) -> Iterator[LabDovecot]:
    lab = LabDovecot(folder)
    try:
        lab.start()  # inside: a Dovecot that fails to start leaves no folders behind either
        yield lab
    finally:
        if lab.proc is not None:
            print(lab.log_tail(40))
        lab.remove()


def new_mailbox(lab: LabDovecot, address: str = BOX) -> str:
    password = secrets.token_urlsafe(12)
    lab.add_user(address, password)
    return password


def imap_folder(lab: LabDovecot, address: str, password: str, folder: str = "INBOX") -> list[bytes]:
    """The messages in a folder, read with the standard library (not the code under test)."""
    context = ssl.create_default_context(cafile=str(lab.cert))
    with imaplib.IMAP4_SSL("127.0.0.1", lab.imaps_port, ssl_context=context) as imap:
        imap.login(address, password)
        typ, _ = imap.select(f'"{folder}"', readonly=True)
        if typ != "OK":
            return []
        _, data = imap.search(None, "ALL")
        out = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(BODY.PEEK[])")
            item = parts[0]
            assert isinstance(item, tuple)
            out.append(item[1])
        return out


def rows_of(office: Office, model: Any) -> list[Any]:
    """Every row of a model, detached, in id order."""
    from sqlalchemy import select

    container = office.container()
    try:
        with transaction(container.sessions) as session:
            rows = list(session.scalars(select(model).order_by(model.id)))
            session.expunge_all()
            return rows
    finally:
        container.close()


def add_lab_box(
    session: Any, pbx: Any, name: str, address: str, lab: LabDovecot, password: str, *, protocol: str, **values: Any
) -> Any:
    """A box on the lab Dovecot (IMAPS or POP3S), trusting its certificate."""
    return add_box(
        session,
        pbx,
        name,
        address=address,
        server="127.0.0.1",
        port=lab.imaps_port if protocol == "imap" else lab.pop3s_port,
        protocol=protocol,
        password=password,
        ca_file=str(lab.cert),
        **({"trusted_authserv_id": LAB_MX} | values),
    )


def office_with_box(
    url: str, data_dir: Path, lab: LabDovecot, password: str, *, protocol: str = "imap", **instance: Any
) -> Office:
    """configure_office, plus box 'requests' (the lab Dovecot) linked to instance 'office'."""
    office = configure_office(url, data_dir, **instance)
    container = office.container()
    try:
        with transaction(container.sessions) as session:
            pbx = get_pbx(session)
            add_lab_box(
                session,
                pbx,
                "requests",
                BOX,
                lab,
                password,
                protocol=protocol,
                processed_folder="Processed" if protocol == "imap" else "",
                poll_seconds=30 if protocol == "imap" else 1,
                max_bytes=3_000_000,
            )
            config.update_instance(session, pbx, "office", mail2fax_box="requests")
    finally:
        container.close()
    return office


def pdf_bytes(pages: int, label: str = "Mail2Fax") -> bytes:
    import io

    from PIL import Image, ImageDraw

    images = []
    for n in range(pages):
        page = Image.new("L", (1240, 1754), 255)
        ImageDraw.Draw(page).text((100, 100 + 40 * n), f"kalliope-tel {label} page {n + 1}", fill=0)
        images.append(page)
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return out.getvalue()


def request(
    subject: str,
    attachments: list[tuple[str, bytes]] | None = None,
    *,
    sender: str = ALICE,
    to: str = BOX,
    body: str | None = "Please fax the attachment.",
    html: str | None = None,
    **headers: str,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{secrets.token_hex(8)}@example.com>"
    if "Authentication_Results" not in headers:  # what the lab's receiving server would say of a real sender
        msg["Authentication-Results"] = f"{LAB_MX}; dmarc=pass header.from={sender.rpartition('@')[2]}"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    if body is not None:
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    elif html is not None:
        msg.set_content(html, subtype="html")
    for name, data in attachments or []:
        maintype, subtype = ("application", "pdf") if name.endswith(".pdf") else ("application", "octet-stream")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


@dataclass
class Keys:
    """A GnuPG home for one party: its own key pair, and others' public keys."""

    gpg: gnupg.GPG
    fingerprint: str

    @classmethod
    def make(cls, home: Path, uid: str) -> Keys:
        home.mkdir(parents=True, mode=0o700)
        subprocess.run(
            [
                "gpg",
                "--homedir",
                str(home),
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                uid,
                "future-default",
                "default",
                "never",
            ],
            check=True,
            capture_output=True,
        )
        gpg = gnupg.GPG(gnupghome=str(home))
        return cls(gpg, gpg.list_keys(secret=True)[0]["fingerprint"])

    def public(self) -> str:
        return str(self.gpg.export_keys(self.fingerprint))

    def secret(self) -> str:
        return str(self.gpg.export_keys(self.fingerprint, secret=True, passphrase="", expect_passphrase=False))

    def trust(self, other: Keys) -> None:
        self.gpg.import_keys(other.public())

    def encrypt(self, data: bytes, to: Keys, *, sign: bool = False) -> bytes:
        # No passphrase argument: python-gnupg would send one on stdin ahead
        # of the data, and gpg, needing none for these unprotected keys, took
        # the document's first line for it (measured: "%PDF-1.4" lost).
        result = self.gpg.encrypt(
            data, to.fingerprint, always_trust=True, armor=True, sign=self.fingerprint if sign else None
        )
        assert result.ok, result.status
        return bytes(result.data)

    def sign_detached(self, data: bytes) -> bytes:
        result = self.gpg.sign(data, keyid=self.fingerprint, detach=True)
        assert result.data, result.status
        return bytes(result.data)


def pgp_mime(outer: EmailMessage, inner: EmailMessage, sender: Keys, box: Keys, *, sign: bool = False) -> bytes:
    """RFC 3156 multipart/encrypted: ``inner`` (a MIME entity) encrypted to the box."""
    clear = inner.as_bytes()
    wrapped = MIMEMultipart("encrypted", protocol="application/pgp-encrypted")
    version = MIMEApplication("Version: 1\n", "pgp-encrypted", _encoder=lambda p: None)
    data = MIMEApplication(sender.encrypt(clear, box, sign=sign), "octet-stream", _encoder=lambda p: None)
    wrapped.attach(version)
    wrapped.attach(data)
    for name in ("Authentication-Results", "From", "To", "Subject", "Message-ID"):
        if outer[name]:
            wrapped[name] = outer[name]
    return wrapped.as_bytes()


def pgp_signed(message: EmailMessage, sender: Keys, *, protected_subject: bool = True) -> bytes:
    """RFC 3156 multipart/signed over ``message``'s body entity, written out
    by hand so the signed bytes are exactly those on the wire. The entity
    keeps the Subject as a protected header, as OpenPGP mail clients write."""
    from email import message_from_bytes, policy

    entity = message_from_bytes(message.as_bytes(), policy=policy.SMTP)
    for name in ("From", "To", "Message-ID", "MIME-Version", "Authentication-Results"):
        del entity[name]
    if not protected_subject:
        del entity["Subject"]
    signed = entity.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").rstrip(b"\r\n")
    signature = sender.sign_detached(signed)
    boundary = f"sig-{secrets.token_hex(6)}".encode()
    outer = ("Authentication-Results", "From", "To", "Subject", "Message-ID")
    head = "".join(f"{name}: {message[name]}\r\n" for name in outer if message[name])
    return (
        head.encode()
        + b"MIME-Version: 1.0\r\n"
        + b'Content-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="'
        + boundary
        + b'"\r\n\r\n--'
        + boundary
        + b"\r\n"
        + signed
        + b"\r\n--"
        + boundary
        + b'\r\nContent-Type: application/pgp-signature; name="signature.asc"\r\n\r\n'
        + signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )
