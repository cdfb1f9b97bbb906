"""Mail2Fax requests read from a real Dovecot (IMAPS) by the production
watcher and intake, with real GnuPG and document conversion, on SQLite and
PostgreSQL: every rule of the KalliopePBX documentation, each kind of bad
mail refused with its reason (or dropped, for an unknown sender), the job
table holding exactly the accepted requests, and every message kept on the
server until its outcome is committed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from kalliope_tel.db import migrate
from kalliope_tel.db.engine import make_engine, transaction
from kalliope_tel.fax import config
from kalliope_tel.fax.models import DeliveryKind, FaxDelivery, FaxJob
from kalliope_tel.lab.dovecot import LabDovecot
from kalliope_tel.mail2fax.boxes import update_box
from kalliope_tel.mail2fax.intake import Handled, Intake, Item
from kalliope_tel.mail2fax.models import Mail2FaxBox, Mail2FaxRequest
from kalliope_tel.mail2fax.watcher import BoxWatcher, box_access
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.users.services import get_user
from tests.fax_service_support import Office
from tests.mail2fax_support import (
    ALICE,
    BOX,
    LAB_MX,
    MARKS,
    Keys,
    dovecot,
    imap_folder,
    new_mailbox,
    office_with_box,
    pdf_bytes,
    pgp_mime,
    pgp_signed,
    request,
    rows_of,
)

pytestmark = [
    *MARKS,
    pytest.mark.timeout(300),
]


@pytest.fixture
def mail_lab(tmp_path: Path) -> Iterator[LabDovecot]:
    with dovecot(tmp_path / "dovecot") as lab:
        yield lab


def _office(url: str, tmp_path: Path, lab: LabDovecot, password: str) -> Office:
    migrate.upgrade(make_engine(url))
    return office_with_box(url, tmp_path / "data", lab, password)


class Reader:
    """The production watcher on its thread, as serve runs it for a box."""

    def __init__(self, office: Office, intake_class: type[Intake] = Intake) -> None:
        self.container = office.container()
        self.intake = intake_class(self.container.sessions, office.data_dir, "test-node")
        with transaction(self.container.sessions) as session:
            box = session.scalars(select(Mail2FaxBox)).one()
            self.watcher = BoxWatcher(box_access(box), self.intake, lambda _i, _e: None)

    def __enter__(self) -> Reader:
        self.watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.watcher.stop()
        assert self.watcher.join(20)
        self.container.close()

    def requests(self) -> list[Mail2FaxRequest]:
        with transaction(self.container.sessions) as session:
            rows = list(session.scalars(select(Mail2FaxRequest).order_by(Mail2FaxRequest.id)))
            session.expunge_all()
            return rows

    def wait_settled(self, count: int, timeout: float = 120) -> list[Mail2FaxRequest]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.requests()
            if len(rows) >= count and all(r.settled for r in rows):
                return rows
            assert time.monotonic() < deadline, f"{len(rows)} of {count} requests handled: {rows}"
            time.sleep(0.2)


def _configure(office: Office, box_keys: Keys, alice_keys: Keys) -> None:
    """Instances on the same box: 'pinned' (PIN 24680), 'sealed' (requests
    encrypted to the box key), 'signed' (PGP signature by the sender)."""
    from kalliope_tel.fax.models import Mail2FaxAuth

    container = office.container()
    try:
        with transaction(container.sessions) as session:
            pbx = get_pbx(session)
            update_box(session, pbx, "requests", pgp_key=box_keys.secret(), pgp_fingerprint=box_keys.fingerprint)
            for name, selection, values in (
                ("pinned", "701", {"mail2fax_auth": "pin", "mail2fax_pin": "24680"}),
                ("sealed", "702", {"mail2fax_encryption": "pgp"}),
                ("signed", "703", {"mail2fax_auth": Mail2FaxAuth.PGP.value}),
            ):
                config.add_instance(
                    session, pbx, name, selection, outbound_class="faxnet", mail2fax_box="requests", **values
                )
                config.set_permission(session, pbx, name, "alice", "send")
            alice = get_user(session, pbx, "alice")
            alice.pgp_public_key, alice.pgp_fingerprint = alice_keys.public(), alice_keys.fingerprint
    finally:
        container.close()


def _nested(depth: int) -> bytes:
    lines = [f"From: {ALICE}", f"To: {BOX}", "Subject: 511@office", "MIME-Version: 1.0"]
    for n in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="b{n}"', "", f"--b{n}"]
    lines += ["Content-Type: text/plain", "", "deep"] + [f"--b{n}--" for n in reversed(range(depth))]
    return "\r\n".join(lines).encode()


def test_every_rule_and_every_bad_mail(fresh_db_url: str, tmp_path: Path, mail_lab: LabDovecot) -> None:
    password = new_mailbox(mail_lab)
    office = _office(fresh_db_url, tmp_path, mail_lab, password)
    box_keys = Keys.make(tmp_path / "gpg-box", f"Fax box <{BOX}>")
    alice_keys = Keys.make(tmp_path / "gpg-alice", f"Alice <{ALICE}>")
    stranger_keys = Keys.make(tmp_path / "gpg-other", "Other <other@example.com>")
    alice_keys.trust(box_keys)
    alice_keys.trust(stranger_keys)
    _configure(office, box_keys, alice_keys)
    two_pages = pdf_bytes(2)
    one_page = pdf_bytes(1)

    inner = request("511@sealed", [("secret.pdf", one_page)])
    signed_inner = request("511@signed", [("signed.pdf", one_page)])
    signed_twice = pgp_signed(request("512@signed", [("twice.pdf", one_page)]), alice_keys)
    # (raw message, outcome, reason substring)
    cases: list[tuple[bytes, str, str]] = [
        (request("511@office", [("letter.pdf", two_pages)]).as_bytes(), "accepted", ""),
        (request("512", [("default-instance.pdf", one_page)]).as_bytes(), "accepted", ""),
        (request("511@office").as_bytes(), "refused", "no attachment"),
        (request("511@office", [("photo.jpg", b"\xff\xd8\xff")]).as_bytes(), "refused", "unsupported type"),
        (request("511@office", [("broken.pdf", two_pages[:400])]).as_bytes(), "refused", "broken.pdf"),
        (request("511@pinned", [("a.pdf", one_page)], body="FAXPIN:13579").as_bytes(), "refused", "wrong PIN"),
        (request("511@pinned", [("a.pdf", one_page)]).as_bytes(), "refused", "no PIN"),
        (request("511@pinned", [("a.pdf", one_page)], body="FAXPIN:24680\n").as_bytes(), "accepted", ""),
        (
            request("511@pinned", [("a.pdf", one_page)], body=None, html="<p>FAXPIN:24680</p>").as_bytes(),
            "refused",
            "only HTML",
        ),
        (request("511@office", [("a.pdf", one_page)], to="someone@office.example").as_bytes(), "refused", "(To)"),
        (request("511@nosuch", [("a.pdf", one_page)]).as_bytes(), "refused", "unknown fax instance 'nosuch'"),
        (request("0039055123@office", [("a.pdf", one_page)]).as_bytes(), "refused", "does not allow this number"),
        (request("fax it@office", [("a.pdf", one_page)]).as_bytes(), "refused", "is not a fax number"),
        (request("511@office", [("big.pdf", b"%PDF-" + b"0" * 3_100_000)]).as_bytes(), "refused", "accepts up to"),
        (_nested(40), "refused", "deeper than"),
        (
            f"From: {ALICE}\r\nTo: {BOX}\r\nSubject: 511@office\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="gone"\r\n\r\nthe parts never start\r\n'.encode(),
            "refused",
            "malformed MIME",
        ),
        (
            request("511@sealed", [("x.pdf.gpg", alice_keys.encrypt(one_page, stranger_keys))]).as_bytes(),
            "refused",
            "cannot be decrypted",
        ),
        (request("511@sealed", [("plain.pdf", one_page)]).as_bytes(), "refused", "only requests encrypted"),
        (pgp_mime(inner, inner, alice_keys, box_keys), "accepted", ""),
        (
            request("511@sealed", [("letter.pdf.gpg", alice_keys.encrypt(two_pages, box_keys))]).as_bytes(),
            "accepted",
            "",
        ),
        (pgp_signed(signed_inner, alice_keys), "accepted", ""),
        (request("511@signed", [("unsigned.pdf", one_page)]).as_bytes(), "refused", "not signed with the PGP key"),
        (pgp_signed(request("511@signed", [("s.pdf", one_page)]), stranger_keys), "refused", "not signed"),
        (
            request(
                "511@office",
                [("a.pdf", one_page)],
                Authentication_Results=f"{LAB_MX}; spf=pass smtp.mailfrom=example.com;"
                " dmarc=fail (p=reject) header.from=example.com",
            ).as_bytes(),
            "refused",
            "could not authenticate the sender (dmarc=fail)",
        ),
        # The sender's address alone proves nothing: only the trusted server's pass does.
        (
            request(
                "511@office",
                [("a.pdf", one_page)],
                Authentication_Results="mx.evil.example; dmarc=pass header.from=example.com",
            ).as_bytes(),
            "refused",
            f"{LAB_MX} did not authenticate the sender (no verdict)",
        ),
        (
            request(
                "511@office",
                [("a.pdf", one_page)],
                Authentication_Results=f"{LAB_MX}; spf=softfail smtp.mailfrom=example.com; dkim=none; dmarc=none",
            ).as_bytes(),
            "refused",
            "did not authenticate the sender (spf=softfail dkim=none dmarc=none)",
        ),
        # A signed request sent again, and one whose Subject (the number) was changed after signing.
        (signed_twice, "accepted", ""),
        (signed_twice, "refused", "used already"),
        (signed_twice.replace(b"Subject: 512@signed", b"Subject: 599@signed", 1), "refused", "changed after signing"),
        (
            pgp_signed(request("513@signed", [("s.pdf", one_page)]), alice_keys, protected_subject=False),
            "refused",
            "not inside what is signed",
        ),
        (
            pgp_signed(
                request("514@signed", [("s.pdf", one_page)], body="Fax it, please.\n514@signed\n"),
                alice_keys,
                protected_subject=False,
            ),
            "accepted",
            "",
        ),
        # PIN guesses: five wrong, then even the right PIN is not checked.
        *[
            (request("511@pinned", [("a.pdf", one_page)], body=f"FAXPIN:1111{n}").as_bytes(), "refused", "wrong PIN")
            for n in range(5)
        ],
        (
            request("511@pinned", [("a.pdf", one_page)], body="FAXPIN:24680").as_bytes(),
            "refused",
            "too many PIN attempts",
        ),
        (request("511@office", [("a.pdf", one_page)], sender="bob@example.com").as_bytes(), "refused", "bob may not"),
        (request("511@office", [("a.pdf", one_page)], sender="mallory@evil.example").as_bytes(), "dropped", ""),
        (request("511@office", [("a.pdf", one_page)], sender="Alice@example.com").as_bytes(), "dropped", ""),
    ]
    for raw, _, _ in cases:
        mail_lab.deliver(BOX, raw)
    with Reader(office) as reader:
        rows = reader.wait_settled(len(cases))
    assert len(rows) == len(cases)
    # Dovecot hands messages over in delivery order; each got its outcome.
    for row, (_, outcome, reason) in zip(rows, cases, strict=True):
        assert row.outcome.value == outcome, (row.subject, row.reason)
        assert reason in row.reason, (row.subject, row.reason)
    jobs = rows_of(office, FaxJob)
    accepted = [r for r in rows if r.outcome.value == "accepted"]
    assert sorted(j.id for j in jobs) == sorted(r.job_id for r in accepted)  # the job table: the accepted, nothing else
    assert {j.origin for j in jobs} == {"mail2fax"}
    by_id = {j.id: j for j in jobs}
    assert by_id[accepted[0].job_id].pages == 2 and by_id[accepted[0].job_id].number == "511"
    assert (
        by_id[accepted[1].job_id].instance_id == by_id[accepted[0].job_id].instance_id
    )  # "512": the box's first instance
    # One reply per known sender's request (accepted or refused); none for the dropped.
    notices = [d for d in rows_of(office, FaxDelivery) if d.kind is DeliveryKind.NOTICE]
    answered = [r for r in rows if r.outcome.value != "dropped"]
    assert sorted(d.fax_id for d in notices) == sorted(r.id for r in answered)
    assert {d.target for d in notices} == {ALICE, "bob@example.com"}
    wrong_pin = next(d for d in notices if d.fax_id == rows[5].id)
    assert "refused" in wrong_pin.payload["subject"] and "wrong PIN" in wrong_pin.payload["body"]
    assert "24680" not in wrong_pin.payload["body"] and "13579" not in wrong_pin.payload["body"]
    ok_notice = next(d for d in notices if d.fax_id == rows[0].id)
    assert ok_notice.payload["subject"].endswith("FAX request accepted: 2 page(s) to 511")
    # Nothing lost: every message left INBOX for the processed folder, after its row was committed.
    assert imap_folder(mail_lab, BOX, password) == []
    assert len(imap_folder(mail_lab, BOX, password, "Processed")) == len(cases)


def test_a_message_stays_on_the_server_until_its_outcome_is_committed(
    fresh_db_url: str, tmp_path: Path, mail_lab: LabDovecot
) -> None:
    password = new_mailbox(mail_lab)
    office = _office(fresh_db_url, tmp_path, mail_lab, password)
    seen_inbox: list[int] = []

    class Flaky(Intake):
        """Fails like a database outage would, twice per message, and looks at
        the server meanwhile; a message that always fails ('poison') is
        refused after three tries instead of blocking the box."""

        tries: dict[str, int] = {}

        def handle(self, box_id: int, item: Item, raw: bytes | None, headers: bytes = b"") -> Handled:
            n = self.tries[item.uid] = self.tries.get(item.uid, 0) + 1
            seen_inbox.append(len(imap_folder(mail_lab, BOX, password)))
            if n <= 2 or b"poison" in (raw or b""):
                raise RuntimeError("database unreachable")
            return super().handle(box_id, item, raw, headers)

    mail_lab.deliver(BOX, request("511@office", [("a.pdf", pdf_bytes(1))]).as_bytes())
    mail_lab.deliver(BOX, request("512@office", [("poison.pdf", pdf_bytes(1))], body="poison").as_bytes())
    with Reader(office, Flaky) as reader:
        update = reader.intake
        rows = reader.wait_settled(2, timeout=90)
    assert [r.outcome.value for r in rows] == ["accepted", "refused"]
    assert "could not be processed (database unreachable)" in rows[1].reason
    assert isinstance(update, Flaky) and sorted(update.tries.values()) == [3, 3]
    assert all(n >= 1 for n in seen_inbox)  # the message was still there at every try
    assert len(rows_of(office, FaxJob)) == 1
    assert len(imap_folder(mail_lab, BOX, password, "Processed")) == 2


def test_one_node_reads_a_box_and_a_request_is_recorded_once(
    fresh_db_url: str, tmp_path: Path, mail_lab: LabDovecot
) -> None:
    from datetime import timedelta

    from kalliope_tel.db.base import utcnow
    from kalliope_tel.mail2fax.boxes import LEASE, hold_boxes, release_boxes
    from kalliope_tel.tenancy.services import create_pbx
    from kalliope_tel.users.services import add_user

    password = new_mailbox(mail_lab)
    office = _office(fresh_db_url, tmp_path, mail_lab, password)
    container = office.container()
    try:
        # The lease: node a reads the box; b gets it only when a stops renewing (or lets go).
        with transaction(container.sessions) as session:
            (box_id,) = hold_boxes(session, "node-a")
            assert hold_boxes(session, "node-b") == []
            assert hold_boxes(session, "node-a") == [box_id]  # renewed
            later = utcnow() + LEASE + timedelta(seconds=1)
            assert hold_boxes(session, "node-b", now=later) == [box_id]
            release_boxes(session, "node-b")
            assert hold_boxes(session, "node-a") == [box_id]
            # A user of another PBX with a known address is a stranger to this box.
            acme = create_pbx(session, "acme", "Acme")
            add_user(session, acme, "dave", "dave@acme.example")
        # Two nodes handling the same message (same box, UIDVALIDITY, UID): one row, one job.
        raw = request("511@office", [("a.pdf", pdf_bytes(1))]).as_bytes()
        item = Item(uidvalidity=7, uid="42", size=len(raw))
        first = Intake(container.sessions, office.data_dir, "node-a").handle(box_id, item, raw)
        second = Intake(container.sessions, office.data_dir, "node-b").handle(box_id, item, raw)
        assert first.request_id is not None and first.job_id is not None
        assert second.request_id is None  # the unique key refused the second record
        stranger = request("511@office", [("a.pdf", pdf_bytes(1))], sender="dave@acme.example").as_bytes()
        dropped = Intake(container.sessions, office.data_dir, "node-a").handle(
            box_id, Item(7, "43", len(stranger)), stranger
        )
        assert dropped.outcome.value == "dropped"
    finally:
        container.close()
    assert len(rows_of(office, FaxJob)) == 1
    assert [(r.uid, r.outcome.value) for r in rows_of(office, Mail2FaxRequest)] == [
        ("42", "accepted"),
        ("43", "dropped"),
    ]
    assert [d.fax_id for d in rows_of(office, FaxDelivery) if d.kind is DeliveryKind.NOTICE] == [first.request_id]
    # The work folders of the refused duplicate are gone; the job's pages are where the job says.
    assert list((office.data_dir / "mail2fax" / "work").iterdir()) == []
    assert not list((office.data_dir / "fax" / "work").glob("*"))


def test_a_hung_server_is_noticed_and_left(fresh_db_url: str, tmp_path: Path, mail_lab: LabDovecot) -> None:
    """The imap process serving the watcher freezes (SIGSTOP) in IDLE: leaving
    IDLE times out (box timeout 2 s, IDLE period 3 s), the watcher reconnects
    to a fresh process and the request delivered meanwhile is handled."""
    import os
    import signal

    password = new_mailbox(mail_lab)
    office = _office(fresh_db_url, tmp_path, mail_lab, password)
    container = office.container()
    try:
        with transaction(container.sessions) as session:
            update_box(session, get_pbx(session), "requests", timeout=2, poll_seconds=3)
    finally:
        container.close()
    with Reader(office) as reader:
        deadline = time.monotonic() + 20
        while not mail_lab.imap_processes():
            assert time.monotonic() < deadline, "the watcher never logged in"
            time.sleep(0.1)
        (frozen,) = mail_lab.imap_processes()
        os.kill(frozen, signal.SIGSTOP)
        try:
            mail_lab.deliver(BOX, request("511@office", [("a.pdf", pdf_bytes(1))]).as_bytes())
            (row,) = reader.wait_settled(1, timeout=30)
        finally:
            os.kill(frozen, signal.SIGCONT)
        assert reader.watcher.stats.reconnects >= 1
    assert row.outcome.value == "accepted"
