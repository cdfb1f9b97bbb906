"""Mail2Fax end to end: a real 'serve' reads a real Dovecot (IMAPS with
IDLE, POP3S by polling), queues the requests as fax jobs, the fax service
sends them to the lab Asterisk's fax machines, and the sender receives the
accepted mail and then the transmission report over real SMTP. A Dovecot
restart during IDLE and a SIGKILL of serve between fetching a request and
committing it leave every request handled exactly once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from kalliope_tel.db.engine import transaction
from kalliope_tel.fax import config
from kalliope_tel.fax.models import FaxJob
from kalliope_tel.lab.dovecot import LabDovecot
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.mail2fax.models import Mail2FaxRequest
from kalliope_tel.tenancy.services import get_pbx
from tests.fax_service_support import SERIAL, Office, attachments, lab_fax_results, smtp_server, start_serve, until
from tests.helpers import ServeNode, apply_lab_config
from tests.mail2fax_support import (
    ALICE,
    BOX,
    MARKS,
    add_lab_box,
    dovecot,
    imap_folder,
    new_mailbox,
    office_with_box,
    pdf_bytes,
    request,
    rows_of,
)
from tests.office_docs import write_docx

pytestmark = [
    pytest.mark.realtime,
    *MARKS,
    pytest.mark.asterisk,
    pytest.mark.timeout(500),
]
POP_BOX = "fax-pop@office.example"


async def _setup(lab: LabInstance, url: str, tmp_path: Path, mail: LabDovecot, password: str) -> Office:
    from tests.conftest import kalliope

    done = kalliope("db", "upgrade", env={"KALLIOPE_DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    office = office_with_box(url, tmp_path / "data", mail, password)
    container = office.container()
    try:
        await apply_lab_config(container, lab)
    finally:
        container.close()
    return office


def _serve(lab_state: LabState, office: Office, smtp_port: int, node: str) -> ServeNode:
    return start_serve(lab_state, office, smtp_port, node, KALLIOPE_LOG_LEVEL="info")


def _requests(office: Office) -> list[Mail2FaxRequest]:
    return rows_of(office, Mail2FaxRequest)


def _successes(lab: LabInstance, number: str) -> list[list[str]]:
    return [r[:2] for r in lab_fax_results(lab, number)]


def _subjects(mail: object, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mail.to(address)]  # type: ignore[attr-defined]


async def test_requests_by_imap_idle_and_pop3_are_faxed_and_answered(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    with dovecot(tmp_path / "dovecot") as mail_lab:
        password = new_mailbox(mail_lab)
        pop_password = new_mailbox(mail_lab, POP_BOX)
        office = await _setup(lab, fresh_db_url, tmp_path, mail_lab, password)
        container = office.container()
        try:
            with transaction(container.sessions) as session:
                pbx = get_pbx(session)
                add_lab_box(session, pbx, "polled", POP_BOX, mail_lab, pop_password, protocol="pop3", poll_seconds=2)
                config.add_instance(session, pbx, "polled", "704", outbound_class="faxnet", mail2fax_box="polled")
                config.set_permission(session, pbx, "polled", "alice", "send")
        finally:
            container.close()
        with smtp_server() as (sink, port):
            node = f"m2f-{uuid.uuid4().hex[:4]}"
            serve = _serve(lab_state, office, port, node)
            try:
                await until(lambda: '"mail2fax.connected"' in serve.output() and "POP3" in serve.output(), 60, "boxes")
                before = {n: _successes(lab, n) for n in ("571", "572")}
                delivered = time.monotonic()
                mail_lab.deliver(BOX, request("571@office", [("letter.pdf", pdf_bytes(2, "IMAP"))]).as_bytes())
                mail_lab.deliver(POP_BOX, request("572", [("note.pdf", pdf_bytes(1, "POP3"))], to=POP_BOX).as_bytes())
                rows = await until(
                    lambda: len(rows_of(office, Mail2FaxRequest)) == 2 and rows_of(office, Mail2FaxRequest),
                    60,
                    "two requests",
                )
                queued_in = time.monotonic() - delivered
                await asyncio.to_thread(
                    sink.wait,
                    lambda: sum("FAX to" in s for s in _subjects(sink, ALICE)) >= 2,
                    240,
                    "two transmission reports",
                )
            finally:
                output = serve.finish(30)
    assert [r.outcome.value for r in rows] == ["accepted", "accepted"], output[-3000:]
    assert queued_in < 10
    jobs = {j.number: j for j in rows_of(office, FaxJob)}
    assert jobs["571"].state.value == "sent" and jobs["571"].pages == 2, output[-3000:]
    assert jobs["572"].state.value == "sent" and jobs["572"].pages == 1
    # The lab's fax machines received the pages.
    assert _successes(lab, "571").count(["SUCCESS", "2"]) == before["571"].count(["SUCCESS", "2"]) + 1
    assert _successes(lab, "572").count(["SUCCESS", "1"]) == before["572"].count(["SUCCESS", "1"]) + 1
    subjects = _subjects(sink, ALICE)
    assert f"[{SERIAL}] FAX request accepted: 2 page(s) to 571" in subjects
    assert f"[{SERIAL}] FAX request accepted: 1 page(s) to 572" in subjects
    assert f"[{SERIAL}] FAX to 571 sent" in subjects and f"[{SERIAL}] FAX to 572 sent" in subjects
    accepted_first = subjects.index(f"[{SERIAL}] FAX request accepted: 2 page(s) to 571")
    assert accepted_first < subjects.index(f"[{SERIAL}] FAX to 571 sent")
    report = next(m for m in sink.to(ALICE) if m["Subject"] == f"[{SERIAL}] FAX to 571 sent")
    assert [name for name, _ in attachments(report)] == [f"fax-report-{jobs['571'].id}.pdf"]
    reply = next(m for m in sink.to(ALICE) if "accepted: 2 page" in str(m["Subject"]))
    assert reply["In-Reply-To"] and reply["Auto-Submitted"] == "auto-generated"


async def test_dovecot_restart_and_a_killed_serve_handle_each_request_once(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    docx = tmp_path / "memo.docx"
    write_docx(docx, ["A memo converted by LibreOffice, which takes a few seconds."])
    with dovecot(tmp_path / "dovecot") as mail_lab:
        password = new_mailbox(mail_lab)
        office = await _setup(lab, fresh_db_url, tmp_path, mail_lab, password)
        with smtp_server() as (sink, port):
            node = f"m2f-{uuid.uuid4().hex[:4]}"
            serve = _serve(lab_state, office, port, node)
            outputs = []
            try:
                await until(lambda: '"mail2fax.connected"' in serve.output(), 60, "box connected")
                mail_lab.deliver(BOX, request("581@office", [("a.pdf", pdf_bytes(1, "A"))]).as_bytes())
                await until(lambda: len(rows_of(office, Mail2FaxRequest)) == 1, 30, "request A")
                # Dovecot restarts while serve IDLEs: the watcher notices and reconnects.
                # (Dovecot 2.3's old imap process lingers and says BYE some seconds later.)
                mail_lab.restart()
                await until(lambda: serve.output().count('"mail2fax.connected"') >= 2, 60, "reconnected", step=0.2)
                mail_lab.deliver(BOX, request("582@office", [("b.pdf", pdf_bytes(1, "B"))]).as_bytes())
                await until(lambda: len(rows_of(office, Mail2FaxRequest)) == 2, 60, "request B after the restart")
                # Killed between fetching C and committing it (its DOCX is being converted).
                mail_lab.deliver(BOX, request("583@office", [("memo.docx", docx.read_bytes())]).as_bytes())
                await until(lambda: serve.output().count('"mail2fax.fetched"') >= 3, 30, "C fetched", step=0.02)
                serve.kill()
                outputs.append(serve.finish(10, terminate=False))
                assert len(rows_of(office, Mail2FaxRequest)) == 2  # C was not committed
                assert len(imap_folder(mail_lab, BOX, password)) == 1  # and is still on the server
                serve = _serve(lab_state, office, port, node)
                await until(
                    lambda: (
                        len(rows_of(office, Mail2FaxRequest)) == 3
                        and all(r.settled for r in rows_of(office, Mail2FaxRequest))
                    ),
                    90,
                    "C",
                )
                await asyncio.sleep(3)  # nothing more arrives
            finally:
                outputs.append(serve.finish(30))
        inbox, processed = imap_folder(mail_lab, BOX, password), imap_folder(mail_lab, BOX, password, "Processed")
    rows = rows_of(office, Mail2FaxRequest)
    log = "\n".join(outputs)
    assert [(r.subject, r.outcome.value) for r in rows] == [
        ("581@office", "accepted"),
        ("582@office", "accepted"),
        ("583@office", "accepted"),
    ], log[-3000:]  # 57X/58X: numbers no other test dials on the shared lab
    assert sorted(j.number for j in rows_of(office, FaxJob)) == ["581", "582", "583"]  # one job each
    accepted = [s for s in _subjects(sink, ALICE) if "request accepted" in s]
    assert sorted(accepted) == sorted(f"[{SERIAL}] FAX request accepted: 1 page(s) to {n}" for n in (581, 582, 583))
    assert inbox == [] and len(processed) == 3
    lost = [json.loads(line) for line in log.splitlines() if '"mail2fax.connection_lost"' in line]
    assert lost, "\n".join(line[-160:] for line in log.splitlines() if "mail2fax" in line)
