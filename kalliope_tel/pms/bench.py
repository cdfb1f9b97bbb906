"""``kalliope-tel bench pms``: one PBX's FIAS link (the engine serve runs)
against a small PMS on loopback, on a private SQLite store:

* **check-ins**: the delay from a GI sent by the PMS to the stay in the store
  (p50, p99);
* **postings**: N postings owed at once, until the PMS acknowledged all
  (postings per second; one at a time, each waiting for its PA);
* **outage**: the PMS away for ``--outage`` seconds while 20 calls are
  priced; after it returns, the seconds until all 20 are posted, and
  whether each was posted once, in order;
* **fuzz**: 10,000 fuzzed records, the seconds to read them all, and
  whether the link lived.

The PMS here is the bench's own (the project's codec answering LS, DR and
PS); the tests use an independent one (tests/pms_peer.py).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.db.leases import take
from kalliope_tel.hotel import services as hotel
from kalliope_tel.pms import owed
from kalliope_tel.pms import settings as pms_settings
from kalliope_tel.pms.engine import LinkRunner
from kalliope_tel.pms.feature import lender
from kalliope_tel.pms.fias import Decoder, Record, encode
from kalliope_tel.pms.models import Owed, PmsMessage
from kalliope_tel.tenancy.services import get_pbx

NODE = "bench-pms"


class BenchPms:
    """A PMS that answers what the link needs, posts each P# once, and can go away."""

    def __init__(self) -> None:
        self.posted: dict[str, float] = {}
        self.guests: dict[str, str] = {}  # room -> guest, as the PMS knows them (its DR answer)
        self.repeats = 0
        self.writer: asyncio.StreamWriter | None = None
        self.away_until = 0.0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self.away_until:
            writer.close()
            return
        self.writer, decoder = writer, Decoder()
        while data := await reader.read(65536):
            for item in decoder.feed(data):
                if isinstance(item, Record):
                    self._answer(writer, item)
        writer.close()

    def _answer(self, writer: asyncio.StreamWriter, record: Record) -> None:
        if record.kind == "LS":
            writer.write(encode(Record("LS")) + encode(Record("LA")))
        elif record.kind == "DR":
            guests = b"".join(encode(Record("GI", {"RN": room, "GN": name})) for room, name in self.guests.items())
            writer.write(encode(Record("DS")) + guests + encode(Record("DE")))
        elif record.kind == "PS":
            sequence = record.get("P#")
            if sequence in self.posted:
                self.repeats += 1
            else:
                self.posted[sequence] = time.monotonic()
            writer.write(encode(Record("PA", {"AS": "OK", "RN": record.get("RN"), "P#": sequence})))

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    def away(self, seconds: float) -> None:
        self.away_until = time.monotonic() + seconds
        if self.writer is not None:
            self.writer.close()


def _seed(container: Container, rooms: int, port: int) -> int:
    with transaction(container.sessions) as s:
        pbx = get_pbx(s)
        hotel.ensure_default_classes(s, pbx, "kt-bench-trunk")
        hotel.create_template(s, pbx, "std")
        for n in range(rooms):
            hotel.create_room(s, pbx, str(1000 + n), "", "std")
        link = pms_settings.update(s, pbx, {"enabled": True, "host": "127.0.0.1", "port": port}, 0)
        take(link, NODE, datetime.now(UTC) + timedelta(days=1))
        return pbx.id


def _stays(container: Container) -> int:
    """Occupied rooms, as the hotel lends them to the PMS link."""
    occupied = lender(container, "hotel", "occupied_since")
    assert occupied is not None, "the bench needs the hotel feature"
    with transaction(container.sessions, read_only=True) as s:
        return len(occupied(s, get_pbx(s)))


def _owe(container: Container, count: int, first: int) -> None:
    with transaction(container.sessions) as s:
        pbx = get_pbx(s)
        for n in range(first, first + count):
            call = type("Call", (), {"record_id": n, "room": "1000", "dialled": f"06{n:08d}", "billsec": 30,
                                     "cost": 1100, "start": datetime.now(UTC)})  # fmt: skip
            owed.owe_posting(s, pbx, call)


def _done(container: Container) -> int:
    with transaction(container.sessions, read_only=True) as s:
        return len(s.scalars(select(PmsMessage.id).where(PmsMessage.state == Owed.DONE)).all())


async def _wait(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.01)


async def _run(checkins: int, postings: int, outage: float, fuzz: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="kt-bench-pms-"))
    container = Container(Settings(database_url=f"sqlite:///{folder / 'store.sqlite3'}"))
    pms = BenchPms()
    await pms.start()
    migrate.upgrade(container.engine)
    pbx_id = await asyncio.to_thread(_seed, container, checkins, pms.port)
    runner = LinkRunner(container, NODE, pbx_id, alive_every=5.0, dead_after=30.0)
    task = asyncio.create_task(runner.run())
    out: dict[str, Any] = {}
    try:
        await _wait(lambda: runner.figures.resyncs >= 1, 10)  # linked, and the PMS's (empty) guest list applied
        delays = []
        for n in range(checkins):
            sent = time.perf_counter()
            pms.guests[str(1000 + n)] = f"Guest {n}"
            pms.send(encode(Record("GI", {"RN": str(1000 + n), "GN": f"Guest {n}"})))
            await _wait(lambda n=n: _stays(container) > n, 10)
            delays.append((time.perf_counter() - sent) * 1000)
        out["checkin_ms"] = {"p50": round(statistics.median(delays), 1),
                             "p99": round(statistics.quantiles(delays, n=100)[98], 1)}  # fmt: skip
        started = time.perf_counter()
        await asyncio.to_thread(_owe, container, postings, 1)
        await _wait(lambda: _done(container) >= postings, 600)
        took = time.perf_counter() - started
        out["postings"] = {"count": postings, "seconds": round(took, 2), "per_second": round(postings / took, 1)}
        pms.away(outage)
        await asyncio.to_thread(_owe, container, 20, postings + 1)
        await asyncio.sleep(outage)
        back = time.perf_counter()
        await _wait(lambda: _done(container) >= postings + 20, 120)
        ids = [k for k in pms.posted][-20:]
        out["outage"] = {"seconds_away": outage, "posted_after_return_s": round(time.perf_counter() - back, 2),
                         "once_each": pms.repeats == 0 and len(pms.posted) == postings + 20,
                         "in_order": ids == sorted(ids, key=int)}  # fmt: skip
        rng = random.Random(7)  # noqa: S311 - reproducible fuzz, not secrets
        before = runner.figures.records_in + runner.figures.malformed
        blob = b"".join(_fuzzed(rng) for _ in range(fuzz))
        started = time.perf_counter()
        pms.send(blob)
        await _wait(lambda: runner.figures.records_in + runner.figures.malformed - before >= fuzz, 300)
        out["fuzz"] = {"records": fuzz, "seconds": round(time.perf_counter() - started, 2),
                       "link_lived": runner.figures.state == "linked", "refused": runner.figures.refused}  # fmt: skip
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        container.close()
    return out


def _fuzzed(rng: random.Random) -> bytes:
    body = rng.choice([b"GI", b"GO", b"WR", b"PA", b"XX", b"g", b""])
    for _ in range(rng.randrange(0, 6)):
        body += b"|" + bytes(rng.randrange(0, 256) for _ in range(rng.randrange(0, 12)))
    return b"\x02" + body.replace(b"\x02", b"").replace(b"\x03", b"") + b"|\x03"


def bench_command(
    checkins: int = typer.Option(200, "--checkins", min=2, help="Check-ins from the PMS (and rooms)."),
    postings: int = typer.Option(1000, "--postings", min=1, help="Postings owed at once."),
    outage: float = typer.Option(30.0, "--outage", min=0, help="Seconds the PMS is away."),
    fuzz: int = typer.Option(10_000, "--fuzz", min=0, help="Fuzzed records sent."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The PMS link: check-in delay, postings per second, an outage, a fuzz flood."""
    result = asyncio.run(_run(checkins, postings, outage, fuzz))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            typer.echo(f"{key}: {value}")
