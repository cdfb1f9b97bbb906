"""The hostile corpus through a real ``serve``: each document uploaded to the
fax page is refused with its reason (or, linked to a local file, sent
without it), a gigabyte upload is refused before its body, and meanwhile the
node still wakes a guest (confirmed with 1 and 9) and receives a fax from
the lab. The node's peak RSS stays under 400 MB: the conversions run in
their own processes, never in the one that carries the calls."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.fax.models import FaxJob, JobState
from kalliope_tel.hotel import services as hotel
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.lab.ports import free_tcp_port
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.users import services as users
from kalliope_tel.users.models import Role
from kalliope_tel.wakeup import services as wakeup
from kalliope_tel.wakeup import timeline as wakeup_timeline
from tests.fax_service_support import nodes_ready, register_rows, setup_office, smtp_server, start_serve, until
from tests.fax_support import make_document
from tests.helpers import apply_lab_config, ari_runtime
from tests.integration.test_hostile_documents import CORPUS, MARKER
from tests.office_docs import write_docx_includetext, write_odt_linked

pytestmark = [pytest.mark.integration, pytest.mark.asterisk, pytest.mark.realtime, pytest.mark.timeout(600)]
ROOM = "341"
PASSWORD = "a long enough password"
RSS_LIMIT_KB = 400 * 1024


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _streamed_gigabyte(port: int, cookie: str, csrf: str) -> int:
    """A logged-in upload that declares 1 GiB: the answer comes before we send any of it."""
    head = (
        f"POST /api/v1/pbx/default/fax/send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {1 << 30}\r\n"
        f"Content-Type: multipart/form-data; boundary=xyz\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head.encode())
        answer = sock.recv(65536)
    return int(answer.split(b" ", 2)[1])


async def test_the_hostile_corpus_through_serve_while_it_wakes_a_guest_and_receives_a_fax(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    office = await setup_office(lab, fresh_db_url, tmp_path)
    container = office.container()
    try:
        with transaction(container.sessions) as s:
            pbx = get_pbx(s)
            users.set_password(s, pbx, "alice", PASSWORD)
            users.set_roles(s, pbx, "alice", {Role.FAX})
            hotel.ensure_default_classes(s, pbx, "kt-lab-trunk")
            hotel.create_template(s, pbx, "std")
            hotel.create_room(s, pbx, ROOM, "", "std", new_accounts=1)
            wakeup.update_settings(s, pbx, name="Wake-up", number="900", message="beep", attempts=1,
                                   confirm_answer=True, confirm_listen=True, digit_timeout=5)  # fmt: skip
        await apply_lab_config(container, lab)
    finally:
        container.close()
    lab.cli(f"database put ktlab/phone {ROOM} phone-press19")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, (make, _reason) in CORPUS.items():
        make(corpus / name)
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{MARKER}\n")
    write_odt_linked(corpus / "linked.odt", secret)
    write_docx_includetext(corpus / "linked.docx", secret)
    spool = lab.dir / "spool" / f"kt-hostile-{uuid.uuid4().hex[:6]}"
    spool.mkdir()
    make_document(spool / "in.tif", 2)
    http_port = free_tcp_port()
    with smtp_server() as (mail, smtp_port):
        node = f"hostile-{uuid.uuid4().hex[:4]}"
        serve = start_serve(
            lab_state, office, smtp_port, node, KALLIOPE_HTTP_BIND=f"127.0.0.1:{http_port}",
            KALLIOPE_SCHEDULER_INTERVAL_SECONDS="0.2",
        )  # fmt: skip
        try:
            await nodes_ready(office, [node])
            container = office.container()
            with transaction(container.sessions) as s:
                alarm_id = wakeup.set_alarm(s, get_pbx(s), ROOM, utcnow() + timedelta(seconds=4)).id
            async with ari_runtime(lab_state) as runtime:
                # A fax machine calls the office while the uploads are converted.
                await runtime.client.originate(
                    "Local/700@kt-default-from-trunk", context="fax-sender", extension="s", priority=1,
                    caller_id="0501234567",
                    variables={"KT_FAXFILE": str(lab.inner / "spool" / spool.name / "in.tif"),
                               "KT_FAXTAG": uuid.uuid4().hex[:8], "KT_FAXSTATION": "LAB HOSTILE"},
                )  # fmt: skip
                refused, accepted, big = await asyncio.to_thread(_upload_corpus, http_port, corpus)
                rows = await until(lambda: [r for r in register_rows(office, direction="in")], 120, "the fax received")
                await asyncio.to_thread(mail.wait, lambda: bool(mail.to("bob@example.com")), 60, "the reception's mail")
                line = await until(
                    lambda: (t := _timeline(office, alarm_id))["state"] in ("confirmed", "failed", "alerted") and t,
                    90,
                    "the wake-up call's end",
                )
            peak_kb = _peak_rss_kb(serve.proc.pid)
        finally:
            output = serve.finish(30)
            container.close()
    for name, (_make, reason) in CORPUS.items():
        assert refused[name][0] == 400 and reason in refused[name][1], (name, refused[name])
    assert big == 413, big
    assert sorted(accepted) == ["linked.docx", "linked.odt"], accepted
    assert line["state"] == "confirmed", (line, output[-3000:])
    ((row,),) = (rows,)
    assert len(mail.to("bob@example.com")) == 1
    assert (row["state"], row["pages"], row["remote_ident"]) == ("received", 2, "LAB HOSTILE"), row
    print(f"serve's peak RSS with the corpus, a wake-up call and a fax reception: {peak_kb / 1024:.0f} MB")
    assert peak_kb < RSS_LIMIT_KB, f"peak RSS {peak_kb / 1024:.0f} MB"
    container = office.container()
    try:
        with transaction(container.sessions) as s:
            jobs = s.query(FaxJob).all()
            assert sorted(j.state for j in jobs) == [JobState.QUEUED, JobState.QUEUED]  # the linked two, for later
    finally:
        container.close()


def _timeline(office: object, alarm_id: int) -> dict[str, object]:
    container = office.container()  # type: ignore[attr-defined]
    try:
        with transaction(container.sessions, read_only=True) as s:
            return dict(wakeup_timeline.timeline(s, get_pbx(s), alarm_id))
    finally:
        container.close()


def _upload_corpus(port: int, corpus: Path) -> tuple[dict[str, tuple[int, str]], list[str], int]:
    """Log in as alice (fax), upload each document as a fax for tomorrow."""
    refused: dict[str, tuple[int, str]] = {}
    accepted: list[str] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=180) as client:
        client.get("/login")
        login = client.post("/api/v1/session", json={"email": "alice@example.com", "password": PASSWORD},
                            headers={"x-csrf-token": client.cookies["kt_login_csrf"]})  # fmt: skip
        assert login.status_code == 200, login.text
        csrf = str(login.json()["csrf_token"])
        tomorrow = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
        for path in sorted(corpus.iterdir()):
            with path.open("rb") as f:
                sent = client.post(
                    "/api/v1/pbx/default/fax/send", data={"instance": "office", "number": "601", "at": tomorrow},
                    files={"documents": (path.name, f, "application/octet-stream")}, headers={"x-csrf-token": csrf},
                )  # fmt: skip
            if sent.status_code == 201:
                accepted.append(path.name)
            else:
                refused[path.name] = (sent.status_code, sent.json().get("detail", ""))
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    big = _streamed_gigabyte(port, cookie, csrf)
    return refused, accepted, big
