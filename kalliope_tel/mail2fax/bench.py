"""Mail2Fax latency: from a request's delivery into a real Dovecot (LMTP
returned) to its fax job being committed, one message at a time, with IMAP
IDLE and, for comparison, POP3 polling.

Requests arrive one at a time, each after a random pause (0.2-1.2 s) so
they fall anywhere in the watcher's cycle. The production watcher and intake run in this process against a lab
Dovecot on loopback (IMAPS and POP3S, self-signed certificate) and a
SQLite (or given) database; each request carries a one-page PDF, so the
figure includes reading the mail and converting the document with
Ghostscript. Dovecot itself delays IDLE notifications by about 0.5 s
(it coalesces changes), which is the floor of the IDLE figure.
"""

from __future__ import annotations

import random
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path

import typer

BOX = "fax-{protocol}@bench.example"  # a mailbox per protocol: runs share nothing
SENDER = "sender@bench.example"
BENCH_MX = "mx.bench.example"  # the receiving server the bench box trusts


@dataclass
class Mail2FaxBenchResult:
    protocol: str
    messages: int
    accepted: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    handling_p50_ms: float  # reading the mail, checks, conversion, commit
    poll_seconds: int
    database: str


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_page_pdf(path: Path) -> Path:
    from PIL import Image, ImageDraw

    page = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
    draw = ImageDraw.Draw(page)
    for n in range(20):
        draw.text((100, 100 + 60 * n), f"kalliope-tel Mail2Fax benchmark line {n}", fill=0)
    page.save(path, "PDF", resolution=150)
    return path


def request_message(box: str, number: str, pdf: bytes, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = box
    msg["Subject"] = f"{number}@bench"
    msg["Message-ID"] = f"<bench-{n}-{time.time_ns()}@bench.example>"
    # The bench's box trusts this server; it vouches for the sender as a real MX would.
    msg["Authentication-Results"] = f"{BENCH_MX}; dmarc=pass header.from={SENDER.rpartition('@')[2]}"
    msg.set_content("Please fax the attached page.\n")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="page.pdf")
    return msg.as_bytes()


def run(
    messages: int = 100,
    protocols: tuple[str, ...] = ("imap", "pop3"),
    database_url: str | None = None,
    pop3_poll_seconds: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Mail2FaxBenchResult]:
    from kalliope_tel.lab import dovecot

    why = dovecot.available()
    if why:
        raise RuntimeError(why)
    with tempfile.TemporaryDirectory(prefix="kt-bench-m2f-") as tmp:
        root = Path(tmp)
        lab = dovecot.LabDovecot(root / "dovecot")
        try:
            lab.start()
            password = secrets.token_urlsafe(16)
            for protocol in protocols:
                lab.add_user(BOX.format(protocol=protocol), password)
            return [
                _run_one(root, lab, password, protocol, messages, database_url, pop3_poll_seconds, progress)
                for protocol in protocols
            ]
        finally:
            lab.remove()


def _run_one(
    root: Path,
    lab: object,
    password: str,
    protocol: str,
    messages: int,
    database_url: str | None,
    pop3_poll_seconds: int,
    progress: Callable[[str, int, int], None] | None,
) -> Mail2FaxBenchResult:
    from kalliope_tel.config import Settings
    from kalliope_tel.container import Container
    from kalliope_tel.db import migrate
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.extensions.accounts import create_class
    from kalliope_tel.fax import config
    from kalliope_tel.lab.dovecot import LabDovecot
    from kalliope_tel.mail2fax.boxes import add_box
    from kalliope_tel.mail2fax.intake import Handled, Intake, Item
    from kalliope_tel.mail2fax.watcher import BoxWatcher, box_access
    from kalliope_tel.tenancy.services import get_pbx
    from kalliope_tel.users.services import add_user

    assert isinstance(lab, LabDovecot)
    data = root / f"data-{protocol}"
    url = database_url or f"sqlite:///{root}/bench-{protocol}.sqlite3"
    container = Container(Settings(database_url=url, data_dir=data))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as session:
        pbx = get_pbx(session)
        create_class(session, pbx, "benchnet", ["_X."], "kt-bench-out")
        user = add_user(session, pbx, "bench", SENDER)
        box = add_box(
            session,
            pbx,
            f"bench-{protocol}",
            address=BOX.format(protocol=protocol),
            server="127.0.0.1",
            port=lab.imaps_port if protocol == "imap" else lab.pop3s_port,
            protocol=protocol,
            password=password,
            ca_file=str(lab.cert),
            poll_seconds=60 if protocol == "imap" else pop3_poll_seconds,
            trusted_authserv_id=BENCH_MX,
        )
        config.add_instance(session, pbx, "bench", "790", outbound_class="benchnet", mail2fax_box=box.name)
        config.set_permission(session, pbx, "bench", user.name, "send")
        access = box_access(box)

    done: dict[str, float] = {}
    handling: list[float] = []
    arrived = threading.Condition()

    class TimedIntake(Intake):
        def handle(self, box_id: int, item: Item, raw: bytes | None, headers: bytes = b"") -> Handled:
            started = time.monotonic()
            handled = super().handle(box_id, item, raw, headers)
            with arrived:
                handling.append(time.monotonic() - started)
                done[str(handled.job_id)] = time.monotonic()
                arrived.notify_all()
            return handled

    intake = TimedIntake(container.sessions, data, "bench")
    watcher = BoxWatcher(access, intake, lambda _id, _err: None)
    pdf = one_page_pdf(root / "page.pdf").read_bytes()
    latencies: list[float] = []
    watcher.start()
    try:
        time.sleep(1.0)  # logged in and idling (or polling)
        rng = random.Random(13)  # noqa: S311 - pauses between test mails, not secrets
        for n in range(messages):
            # A random pause first: deliveries fall anywhere in the watcher's
            # cycle, as real mail does, not always just as it starts to IDLE.
            time.sleep(rng.uniform(0.2, 1.2))
            before = len(done)
            lab.deliver(access.username, request_message(access.username, f"5{n:05d}", pdf, n))
            delivered = time.monotonic()
            with arrived:
                if not arrived.wait_for(lambda b=before: len(done) > b, timeout=60):  # type: ignore[misc]
                    raise RuntimeError(f"request {n} was not handled within 60 s ({protocol})")
                latencies.append(max(done.values()) - delivered)
            if progress is not None:
                progress(protocol, n + 1, messages)
    finally:
        watcher.stop()
        watcher.join(15)
        container.close()
    accepted = sum(1 for k in done if k != "None")
    ms = [x * 1000 for x in latencies]
    return Mail2FaxBenchResult(
        protocol=protocol,
        messages=messages,
        accepted=accepted,
        p50_ms=round(statistics.median(ms), 1),
        p99_ms=round(_percentile(ms, 0.99), 1),
        max_ms=round(max(ms), 1),
        handling_p50_ms=round(statistics.median(handling) * 1000, 1),
        poll_seconds=access.poll_seconds if protocol == "pop3" else 0,
        database=url.split(":", 1)[0],
    )


def bench_command(
    messages: int = typer.Option(100, help="Requests per protocol, one at a time."),
    pop3: bool = typer.Option(True, help="Also measure POP3 polling, for comparison."),
    pop3_poll_seconds: int = typer.Option(1, help="POP3 polling period."),
    database_url: str = typer.Option("", help="Database (default: a fresh SQLite file)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Mail2Fax: delay from delivery into Dovecot to the job being queued (p50, p99), IDLE vs POP3."""
    import json

    from kalliope_tel.cli.context import Steps, print_table

    protocols = ("imap", "pop3") if pop3 else ("imap",)
    with Steps("bench mail2fax") as steps:
        results = run(
            messages,
            protocols,
            database_url or None,
            pop3_poll_seconds,
            progress=lambda proto, n, total: steps.say(f"{proto} {n}/{total}", force=n == total),
        )
    rows = [asdict(r) for r in results]
    if as_json:
        print(json.dumps({"results": rows, "target": {"imap_p99_ms": 1000}}))
        return
    columns = list(rows[0])
    print_table("Mail2Fax: delivery to queued job", columns, [[r[c] for c in columns] for r in rows])
