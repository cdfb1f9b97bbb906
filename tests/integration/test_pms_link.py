"""The PMS link on both stores, against the tests' own PMS (tests/pms_peer.py,
which shares no code with kalliope_tel.pms): one PBX's link run by its
engine (``LinkRunner``) in this process, the guests' records carried out by
the hotel's and wake-up's services, postings owed by billing's pricing and
sent once each, in order, across a link dropped for a while; and a flood of
fuzzed records that the link survives, answering or logging each."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from kalliope_tel.billing.records import Cdr, Rater, record
from kalliope_tel.billing.service import room_call_hook
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.db.leases import take
from kalliope_tel.hotel import cleaning, services, stays
from kalliope_tel.hotel.models import CleaningSource
from kalliope_tel.hotel.panel import panel_rooms
from kalliope_tel.pms import settings as pms_settings
from kalliope_tel.pms.engine import LinkRunner
from kalliope_tel.pms.models import Owed, PmsMessage
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.wakeup import services as wakeup
from kalliope_tel.wakeup.models import Alarm, AlarmState
from tests.billing_support import seed_billing_hotel
from tests.pms_peer import PmsPeer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
NODE = "pms-test-node"


def _setup(url: str, port: int) -> Container:
    container = Container(Settings(database_url=url))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as s:
        seed_billing_hotel(s)
        pbx = get_pbx(s)
        services.create_room(s, pbx, "102", "Room 102", "std")
        wakeup.update_settings(s, pbx, name="Wake-up", number="900", message="beep")
        link = pms_settings.update(s, pbx, {"enabled": True, "host": "127.0.0.1", "port": port, "room_status": True}, 0)
        take(link, NODE, datetime.now(UTC) + timedelta(hours=1))  # this test is the link's holder
    return container


@asynccontextmanager
async def _running(container: Container) -> AsyncIterator[LinkRunner]:
    with transaction(container.sessions, read_only=True) as s:
        pbx_id = get_pbx(s).id
    runner = LinkRunner(container, NODE, pbx_id, alive_every=1.0, dead_after=4.0)
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := await asyncio.to_thread(check)):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)
    return found


def _room(container: Container, extension: str) -> dict[str, Any]:
    with transaction(container.sessions, read_only=True) as s:
        return next(r for r in panel_rooms(s, get_pbx(s)) if r["extension"] == extension)


def _price_call(container: Container, n: int, extension: str = "101") -> None:
    """A call priced as billing prices it (the PMS's posting owed in that transaction)."""
    start = datetime.now(UTC)  # after the check-in: the call is the stay's
    cdr = Cdr(uniqueid=f"17000.{n}", linkedid=f"17000.{n}", sequence=n, channel="PJSIP/101-00000001",
              dst_channel=f"PJSIP/lab-trunk-{n:08x}", disposition="ANSWERED", start=start,
              answer=start + timedelta(seconds=1), end=start + timedelta(seconds=1 + 20 + n % 7),
              pbx="default", extension=extension, dialled=f"06{n:08d}", out="standard", line_var="")  # fmt: skip
    with transaction(container.sessions) as s:
        assert record(s, "", cdr, source="ami", node=NODE, rater=Rater(room_call_hook(container)))


def _messages(container: Container) -> list[PmsMessage]:
    with transaction(container.sessions, read_only=True) as s:
        return list(s.scalars(select(PmsMessage).order_by(PmsMessage.id)))


def _postings(container: Container) -> list[PmsMessage]:
    return [m for m in _messages(container) if m.kind.value == "PS"]


async def test_guests_wakeups_postings_and_room_status_over_the_link(fresh_db_url: str) -> None:
    peer = PmsPeer(guests={"102": "Bianchi"})
    container = _setup(fresh_db_url, peer.port)
    with transaction(container.sessions) as s:  # checked in here while the link was down; the PMS has no such stay
        stays.check_in(s, get_pbx(s), "101", "Fantasma")
    try:
        async with _running(container) as runner:
            # Linked: described (LD, LR), then the PMS's guests asked again (DR) and applied:
            # 102 checked in, 101 (not in the PMS's list) checked out.
            await _until(lambda: peer.records("DR"), 10, "the resync request")
            assert {r["RI"] for r in peer.records("LR")} >= {"GI", "GO", "PS", "PA", "WR", "WA", "RE"}
            assert (await _until(lambda: _room(container, "102")["occupied"], 5, "102 from the resync")) is True
            await _until(lambda: not _room(container, "101")["occupied"], 5, "101 checked out by the resync")
            # Check-in from the PMS: the panel shows it within 1 s.
            sent = time.monotonic()
            peer.send("GI", RN="101", GN="Rossi", GF="Ada", CS="1")
            await _until(lambda: _room(container, "101")["occupied"], 5, "101 checked in")
            assert time.monotonic() - sent < 1.0
            assert _room(container, "101")["stay"]["owner"] == "Ada Rossi"
            # A second check-in of an occupied room is refused by the receptionist's rule, and logged.
            refused = runner.figures.refused
            peer.send("GI", RN="101", GN="Verdi")
            await _until(lambda: runner.figures.refused > refused, 5, "the double check-in refused")
            assert _room(container, "101")["stay"]["owner"] == "Ada Rossi"

            # A priced call from the occupied room: one posting, acknowledged.
            await asyncio.to_thread(_price_call, container, 1)
            (posting,) = await asyncio.to_thread(peer.wait_for, "PS", 1)
            assert (posting["RN"], posting["TA"], posting["DD"], posting["PT"]) == ("101", "11", "0600000001", "C")
            await _until(lambda: _postings(container)[-1].state is Owed.DONE, 5, "the posting answered")
            # A call from a free room owes nothing.
            await asyncio.to_thread(_price_call, container, 2, "555")
            assert len(_postings(container)) == 1

            # Wake-up from the PMS (hotel time), then cleared; another one cancelled at check-out.
            with transaction(container.sessions, read_only=True) as s:
                zone = get_pbx(s).timezone
            due = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo(zone)) + timedelta(hours=2)
            peer.send("WR", RN="101", DA=due.strftime("%y%m%d"), TI=due.strftime("%H%M"))
            alarms = await _until(lambda: _alarms(container), 5, "the alarm set")
            assert [a[1] for a in alarms] == [AlarmState.SCHEDULED]
            peer.send("WC", RN="101", DA=due.strftime("%y%m%d"), TI=due.strftime("%H%M"))
            await _until(lambda: _alarms(container)[0][1] is AlarmState.CANCELLED, 5, "the alarm cleared")
            (answer,) = await asyncio.to_thread(peer.wait_for, "WA", 1)
            assert (answer["RN"], answer["AS"]) == ("101", "CX")

            # The maid's code: the PMS gets the room status.
            with transaction(container.sessions) as s:
                cleaning.set_cleaning(s, get_pbx(s), "101", False, CleaningSource.PHONE)
            # (The first RE: the resync's check-out of 101 left it dirty.)
            statuses = await asyncio.to_thread(peer.wait_for, "RE", 2)
            assert [(r["RN"], r["RS"]) for r in statuses] == [("101", "1"), ("101", "1")]

            # A room move, then check-out: the room is free and its alarms are cancelled.
            peer.send("WR", RN="101", DA=due.strftime("%y%m%d"), TI=(due + timedelta(minutes=5)).strftime("%H%M"))
            await _until(lambda: len(_alarms(container)) == 2, 5, "the second alarm")
            peer.send("GC", RN="103", RO="101", GN="Rossi")
            await _until(lambda: runner.figures.refused > refused + 0, 5, "a move to a room that does not exist")
            peer.send("GO", RN="101")
            await _until(lambda: not _room(container, "101")["occupied"], 5, "101 checked out")
            assert _alarms(container)[-1][1] is AlarmState.CANCELLED
            assert [a["AS"] for a in await asyncio.to_thread(peer.wait_for, "WA", 2)] == ["CX", "CX"]
    finally:
        peer.close()
        container.close()


def _alarms(container: Container) -> list[tuple[int, AlarmState]]:
    with transaction(container.sessions, read_only=True) as s:
        return [(a.id, a.state) for a in s.scalars(select(Alarm).order_by(Alarm.id))]


async def test_twenty_calls_while_the_pms_is_away_are_posted_once_each_in_order(fresh_db_url: str) -> None:
    peer = PmsPeer(guests={"101": "Rossi"})
    container = _setup(fresh_db_url, peer.port)
    try:
        async with _running(container) as runner:
            await _until(lambda: _room(container, "101")["occupied"], 10, "101 from the resync")
            peer.drop(3)  # the engine on both stores; test_pms_lab has 20 real calls, 'bench pms' 30 s away
            for n in range(1, 21):
                await asyncio.to_thread(_price_call, container, n)
            assert peer.records("PS") == []
            posted = await _until(lambda: len(peer.posted) == 20 and peer.posted, 40, "20 postings after the outage")
            assert list(posted) == [str(m.id) for m in _postings(container)]  # in order, by P#
            assert [p["DD"] for p in posted.values()] == [f"06{n:08d}" for n in range(1, 21)]
            assert peer.repeats == 0 and len(peer.records("PS")) == 20
            await _until(lambda: all(m.state is Owed.DONE for m in _messages(container)), 5, "all answered")
            assert runner.figures.connects >= 2 and len(peer.records("DR")) >= 2  # resynced after it came back
    finally:
        peer.close()
        container.close()


def _fuzzed(rng: random.Random) -> bytes:
    """One framed record of random kind and random fields (any byte but the framing's)."""
    kinds = [b"GI", b"GO", b"GC", b"WR", b"WC", b"PA", b"RE", b"XX", b"gi", b"G", b"", b"LD", b"DS", b"DE"]
    body = rng.choice(kinds)
    for _ in range(rng.randrange(0, 6)):
        body += b"|" + bytes(rng.randrange(0, 256) for _ in range(rng.randrange(0, 12)))
    if rng.random() < 0.7:
        body += b"|"
    return b"\x02" + body.replace(b"\x02", b"").replace(b"\x03", b"") + b"\x03"


def _junk(rng: random.Random) -> bytes:
    """Bytes between records (no framing byte, no line end): one refusal per run."""
    return bytes(rng.choice([b for b in range(256) if b not in (2, 3, 10, 13)]) for _ in range(rng.randrange(1, 40)))


async def test_ten_thousand_fuzzed_records_are_answered_or_logged_and_the_link_lives(fresh_db_url: str) -> None:
    peer = PmsPeer()
    container = _setup(fresh_db_url, peer.port)
    rng = random.Random(31)
    try:
        async with _running(container) as runner:
            await _until(lambda: peer.records("DR"), 10, "linked")
            before = runner.figures.records_in + runner.figures.malformed
            chunks = [_fuzzed(rng) + (_junk(rng) if n % 10 == 0 else b"") for n in range(10_000)]
            await asyncio.to_thread(peer.send_raw, b"".join(chunks))
            peer.send("GI", RN="101", GN="Dopo")  # the link still carries good records after the flood
            await _until(lambda: _room(container, "101")["occupied"], 60, "the record after the flood")
            # Every record and every run of junk was read: each answered by the link, applied,
            # or refused and logged; none lost, none crashed the link.
            assert runner.figures.records_in + runner.figures.malformed - before == 10_000 + 1_000 + 1
            assert runner.figures.malformed >= 1_000 and runner.figures.refused >= runner.figures.malformed
            assert runner.figures.connects == 1  # never dropped
    finally:
        peer.close()
        container.close()


def test_bench_pms_small_variant_prints_its_figures() -> None:
    """The suite's variant of 'bench pms' (the soak sizes are the command's defaults)."""
    import json

    from tests.conftest import kalliope

    done = kalliope("bench", "pms", "--checkins", "5", "--postings", "20", "--outage", "1", "--fuzz", "500", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert figures["postings"]["count"] == 20 and figures["postings"]["per_second"] > 0
    assert figures["outage"]["once_each"] and figures["outage"]["in_order"]
    assert figures["fuzz"]["link_lived"] and figures["checkin_ms"]["p99"] >= figures["checkin_ms"]["p50"] > 0
