"""The fax service on the lab Asterisk, through a real 'serve' and a real
SMTP server: receptions mailed to the users who may receive, sends to the
lab's fax machines with reports, retries on busy, limits, crash recovery."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pikepdf
import pytest

from kalliope_tel.lab.instance import LabInstance, LabState
from tests.fax_service_support import (
    SERIAL,
    T30_UNDER_LOAD,
    Office,
    attachments,
    lab_calls,
    lab_fax_entries,
    lab_fax_results,
    nodes_ready,
    register_rows,
    setup_office,
    smtp_server,
    start_serve,
    until,
)
from tests.fax_support import make_document
from tests.helpers import ari_runtime

pytestmark = [pytest.mark.integration, pytest.mark.realtime, pytest.mark.asterisk, pytest.mark.timeout(400)]


def _cli(office: Office, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    from tests.conftest import kalliope

    return kalliope(
        *args, env={"KALLIOPE_DATABASE_URL": office.url, "KALLIOPE_DATA_DIR": str(office.data_dir)}, stdin=stdin
    )


def _pdf(path: Path, pages: int) -> Path:
    """A PDF with ``pages`` A4 pages of text, made with Pillow."""
    from PIL import Image, ImageDraw

    images = []
    for n in range(pages):
        page = Image.new("L", (1240, 1754), 255)
        ImageDraw.Draw(page).text((100, 100 + 40 * n), f"kalliope-tel outgoing fax page {n + 1}", fill=0)
        images.append(page)
    images[0].save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return path


async def test_a_fax_to_an_instance_is_mailed_to_the_users_who_may_receive(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    office = await setup_office(lab, fresh_db_url, tmp_path)
    spool = lab.dir / "spool" / f"kt-in-{uuid.uuid4().hex[:6]}"
    spool.mkdir()
    make_document(spool / "in.tif", 3, height=2200)
    log_file = lab.dir / "log" / "messages.log"
    log_from = log_file.stat().st_size if log_file.exists() else 0
    with smtp_server() as (mail, port):
        node = f"rx-{uuid.uuid4().hex[:4]}"
        serve = start_serve(lab_state, office, port, node)
        try:
            await nodes_ready(office, [node])
            async with ari_runtime(lab_state) as runtime:
                tag = uuid.uuid4().hex[:8]
                # A fax machine (Asterisk's SendFax) calls the instance's selection from a trunk.
                await runtime.client.originate(
                    "Local/700@kt-default-from-trunk",
                    context="fax-sender",
                    extension="s",
                    priority=1,
                    caller_id="0501234567",
                    variables={
                        "KT_FAXFILE": str(lab.inner / "spool" / spool.name / "in.tif"),
                        "KT_FAXTAG": tag,
                        "KT_FAXSTATION": "LAB 0501234567",
                    },
                )
                await asyncio.to_thread(
                    mail.wait, lambda: mail.to("alice@example.com") and mail.to("bob@example.com"), 120, "two mails"
                )
                await asyncio.sleep(2)  # no third mail follows
        finally:
            output = serve.finish(30)
    assert len(mail.to("alice@example.com")) == 1 and len(mail.to("bob@example.com")) == 1, output[-3000:]
    assert mail.to("carol@example.com") == []  # sending permission only
    # The caller was a Local channel: kalliope-fax-in asks PJSIP_ENDPOINT of PJSIP callers only.
    with log_file.open("rb") as f:
        f.seek(log_from)
        assert b"PJSIP_ENDPOINT" not in f.read()
    for msg in (mail.to("alice@example.com")[0], mail.to("bob@example.com")[0]):
        assert msg["Subject"] == f"[{SERIAL}] FAX successfully received from 00501234567"
        assert msg["From"] == "fax@kalliope.test"
        body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "FAX received from 00501234567" in body and "Number of pages: 3" in body
        ((name, data),) = attachments(msg)
        assert re.fullmatch(r"F00501234567_T700_\d{4}-\d\d-\d\d_\d\d_\d\d_\d\d_\d+\.pdf", name), name
        with pikepdf.open(io.BytesIO(data)) as pdf:
            assert len(pdf.pages) == 3
            width, height = (float(v) for v in pdf.pages[0].mediabox[2:])
            assert abs(width - 1728 / 204 * 72) < 2 and abs(height - 2200 / 196 * 72) < 3  # fax width, page length sent
    (row,) = register_rows(office)
    assert (row["direction"], row["state"], row["pages"], row["media"]) == ("in", "received", 3, "engine")
    assert row["remote_ident"] == "LAB 0501234567" and row["number"] == "0501234567"


async def test_send_to_a_lab_fax_machine_and_to_a_busy_number(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    office = await setup_office(lab, fresh_db_url, tmp_path, max_attempts=3, retry_minutes=0.05)
    number_ok, number_busy = "511", "611"
    doc = _pdf(tmp_path / "letter.pdf", 2)
    # Refused before anything is queued: a user without sending permission,
    # a number the class forbids, a damaged document.
    refused = _cli(office, "fax", "send", str(doc), "--instance", "office", "--to", number_ok, "--as", "bob")
    assert refused.returncode == 1 and "bob may not send" in refused.stderr
    refused = _cli(office, "fax", "send", str(doc), "--instance", "office", "--to", "0039055123", "--as", "alice")
    assert refused.returncode == 1 and "does not allow this number" in refused.stderr
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(doc.read_bytes()[:300])
    refused = _cli(office, "fax", "send", str(broken), "--instance", "office", "--to", number_ok, "--as", "alice")
    assert refused.returncode == 1 and "refused: broken.pdf" in refused.stderr, refused.stderr
    assert register_rows(office) == []
    calls_before = lab_calls(lab, number_busy)
    # The lab is shared by the worker's tests (the other database's run too).
    results_before = set(lab_fax_entries(lab, number_ok))
    with smtp_server() as (mail, port):
        node = f"tx-{uuid.uuid4().hex[:4]}"
        serve = start_serve(lab_state, office, port, node)
        try:
            await nodes_ready(office, [node])
            for number in (number_ok, number_busy):
                sent = _cli(
                    office, "fax", "send", str(doc), "--instance", "office", "--to", number, "--as", "alice", "--json"
                )
                assert sent.returncode == 0, sent.stderr
            await asyncio.to_thread(
                mail.wait, lambda: len(mail.to("alice@example.com")) >= 2, 180, "two reports to alice"
            )
        finally:
            output = serve.finish(30)
    rows = {r["number"]: r for r in register_rows(office, direction="out")}
    ok, busy = rows[number_ok], rows[number_busy]
    assert ok["state"] == "sent" and ok["attempts"] == 1, (ok, output[-3000:])
    results = lab_fax_results(lab, number_ok, besides=results_before)
    assert [r[:2] for r in results] == [["SUCCESS", "2"]], results
    assert results[0][4] == "KT OFFICE"  # our station id reached the far end
    assert busy["state"] == "failed" and busy["attempts"] == 3, busy
    log = busy["attempt_log"]
    assert [a["ok"] for a in log] == [False] * 3
    gaps = [(b["started_at"] - a["ended_at"]).total_seconds() for a, b in itertools.pairwise(log)]
    assert all(2.5 <= g < 15 for g in gaps), gaps  # the instance's interval (3 s), not sooner
    assert lab_calls(lab, number_busy) - calls_before == 3
    subjects = sorted(m["Subject"] for m in mail.to("alice@example.com"))
    assert subjects == sorted([f"[{SERIAL}] FAX to {number_ok} sent", f"[{SERIAL}] FAX to {number_busy} NOT sent"])
    failed_mail = next(m for m in mail.to("alice@example.com") if "NOT sent" in m["Subject"])
    body = failed_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert len(re.findall(r"^Attempt \d .*: failed \(not answered \(busy\)\)", body, re.M)) == 3, body
    assert busy["reason"] == "not answered (busy) (after 3 attempt(s))"
    ((name, report),) = attachments(failed_mail)
    with pikepdf.open(io.BytesIO(report)) as pdf:
        assert name == f"fax-report-{busy['id'][4:]}.pdf" and len(pdf.pages) == 1
    download = _cli(office, "fax", "download", ok["id"], "-o", str(tmp_path), "--as", "alice", "--json")
    assert download.returncode == 0, download.stderr
    with pikepdf.open(tmp_path / f"fax-{ok['id'][4:]}-document.pdf") as pdf:
        assert len(pdf.pages) == 2
    assert (tmp_path / f"fax-{ok['id'][4:]}-report.pdf").exists()
    denied = _cli(office, "fax", "download", ok["id"], "-o", str(tmp_path), "--as", "bob")
    assert denied.returncode == 1 and "you may see" in denied.stderr


async def test_total_limit_one_makes_the_second_send_wait(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    office = await setup_office(lab, fresh_db_url, tmp_path)
    assert _cli(office, "fax", "settings", "--max-total", "1").returncode == 0
    doc = _pdf(tmp_path / "one.pdf", 1)
    with smtp_server() as (_mail, port):
        node = f"lim-{uuid.uuid4().hex[:4]}"
        serve = start_serve(lab_state, office, port, node)
        try:
            for number in ("521", "522"):
                sent = _cli(office, "fax", "send", str(doc), "--instance", "office", "--to", number, "--as", "carol")
                assert sent.returncode == 0, sent.stderr
            await nodes_ready(office, [node])
            await until(
                lambda: all(r["state"] == "sent" for r in register_rows(office)) and len(register_rows(office)) == 2,
                180,
                "both sent",
            )
        finally:
            output = serve.finish(30)
    first, second = sorted((r["attempt_log"][0] for r in register_rows(office)), key=lambda a: a["started_at"])
    assert second["started_at"] >= first["ended_at"], (first, second, output[-2000:])


async def test_serve_killed_while_sending_retries_and_sends_once(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    office = await setup_office(lab, fresh_db_url, tmp_path, retry_minutes=0)
    number = "531"
    doc = _pdf(tmp_path / "long.pdf", 4)
    node = f"kill-{uuid.uuid4().hex[:4]}"
    results_before = set(lab_fax_entries(lab, number))  # the lab is shared by the worker's tests
    with smtp_server() as (_mail, port):
        serve = start_serve(lab_state, office, port, node)
        try:
            await nodes_ready(office, [node])
            sent = _cli(office, "fax", "send", str(doc), "--instance", "office", "--to", number, "--as", "alice")
            assert sent.returncode == 0, sent.stderr
            await until(lambda: register_rows(office)[0]["state"] == "sending", 60, "sending")
            await asyncio.sleep(2)  # pages are on the line
            serve.proc.send_signal(signal.SIGKILL)
            serve.finish(10, terminate=False)
            serve = start_serve(lab_state, office, port, node)  # same node name: it recovers its own attempt
            await until(lambda: register_rows(office)[0]["state"] == "sent", 180, "sent after restart")
        finally:
            output = serve.finish(30)
    (row,) = register_rows(office)
    log = row["attempt_log"]
    events = [line for line in output.splitlines() if '"fax.' in line or "error" in line.lower()]
    assert [a["ok"] for a in log] == [False, True], ([(a["ok"], a["reason"]) for a in log], events[-40:])
    assert "serve stopped" in log[0]["reason"]
    results = await until(
        lambda: found if len(found := lab_fax_results(lab, number, besides=results_before)) == 2 else None,
        60,
        "both calls ended",
    )
    assert sorted(r[0] for r in results) == ["FAILED", "SUCCESS"], results  # the document arrived whole once
    assert [r[1] for r in results if r[0] == "SUCCESS"] == ["4"]


async def test_two_nodes_on_postgresql_dial_each_queued_number_once(
    db_backend: str, lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    if db_backend != "postgresql":
        pytest.skip("several nodes share PostgreSQL (SQLite is one node's store)")
    office = await setup_office(lab, fresh_db_url, tmp_path)
    doc = _pdf(tmp_path / "memo.pdf", 1)
    numbers = [str(n) for n in range(541, 551)]
    # The lab is shared by the worker's tests: count this test's calls only.
    calls_before = {n: lab_calls(lab, n) for n in numbers}
    results_before = {n: set(lab_fax_entries(lab, n)) for n in numbers}
    for number in numbers:
        sent = _cli(office, "fax", "send", str(doc), "--instance", "office", "--to", number, "--as", "carol")
        assert sent.returncode == 0, sent.stderr
    with smtp_server() as (_mail, port):
        nodes = [f"pg-{n}-{uuid.uuid4().hex[:4]}" for n in "ab"]
        # Five calls each at most, ten queued: neither node can take the whole
        # queue alone, and ten real-time fax calls at once stay inside what two cores carry
        # beside the lab's own spandsp (twenty saturated them: T.30 failed in
        # up to 6 of 20 calls, the "real-time budget" issue's fax cliff).
        # (Both on one machine: the second listens for FastAGI elsewhere.)
        from tests.fax_service_support import free_port

        serves = [
            start_serve(lab_state, office, port, nodes[0], KALLIOPE_FAX_MAX_CALLS="5"),
            start_serve(
                lab_state,
                office,
                port,
                nodes[1],
                KALLIOPE_FAX_MAX_CALLS="5",
                KALLIOPE_AGI_BIND=f"127.0.0.1:{free_port()}",
            ),
        ]
        try:
            await nodes_ready(office, nodes)
            await until(
                lambda: all(r["state"] in ("sent", "failed") for r in register_rows(office)), 300, "every fax ended"
            )
        finally:
            outputs = [serve.finish(30) for serve in serves]
    rows = register_rows(office)
    assert {r["state"] for r in rows} == {"sent"}, [(r["number"], r["reason"]) for r in rows if r["state"] != "sent"]
    # Every number was dialled once per attempt, never by both nodes for one
    # attempt. On a loaded machine a fax call can fail (T.30 under load) and
    # is then retried: such an attempt must carry the engine's reason.
    attempts = {r["number"]: r["attempts"] for r in rows}
    retried = {
        r["number"]: [(a["node"], a["reason"]) for a in r["attempt_log"][:-1]] for r in rows if r["attempts"] > 1
    }
    calls = {n: lab_calls(lab, n) - calls_before[n] for n in numbers}
    # Never two calls for one attempt (two nodes on one job would show here);
    # an attempt can fail before its call reaches the far end (seen once in
    # CI under load: 2 attempts, 1 call), which the reasons then say.
    assert all(1 <= calls[n] <= attempts[n] for n in numbers), (calls, retried)
    assert all(reason for reasons in retried.values() for _node, reason in reasons), retried
    assert all(len({a["number"] for a in r["attempt_log"]}) == r["attempts"] for r in rows)
    print(
        f"{len(numbers)} queued sends, two nodes: {sum(attempts.values())} calls,"
        f" retried after a failed call: {retried}"
    )

    # Real-time fax calls on two loaded cores (both nodes, Asterisk's
    # spandsp, the lab's fax machines) can still fail T.30 in negotiation now
    # and then; the attempt is retried, as a fax service must. Exactly that fault is excused (its spandsp messages),
    # counted and printed; any other reason, or most calls failing, is a fault.
    # (Seen: 4 of 20 on one node, "Received a DCN while waiting for a DIS";
    # the capacity itself is the "real-time budget" issue's fax cliff.)
    # The far end hanging up is excused only when the lab's fax machine for
    # that number recorded its own T.30 failure under load for this test.
    def lab_failed_under_load(number: str) -> bool:
        return any(
            fields[0] == "FAILED" and T30_UNDER_LOAD.search(fields[2])
            for fields in lab_fax_results(lab, number, besides=results_before[number])
        )

    unexcused = {
        n: r
        for n, reasons in retried.items()
        for _node, r in reasons
        if not T30_UNDER_LOAD.search(r) and not (r.startswith("the far end hung up") and lab_failed_under_load(n))
    }
    assert unexcused == {}, unexcused
    assert len(retried) <= len(numbers) * 3 // 10, retried  # seen at most 4 of 20; half would hide a real fault
    assert {a["node"] for r in rows for a in r["attempt_log"]} == set(nodes), outputs[0][-2000:]
