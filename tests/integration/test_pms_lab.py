"""The PMS link in ``serve`` on the lab Asterisk, against the tests' own PMS
(tests/pms_peer.py): the PMS checks a guest in, the room's phone calls out
by the lab's SIP trunk and the priced call is posted and acknowledged, the
PMS's wake-up call rings the room and is confirmed with 1 and 9, the maid's
code reaches the PMS as room status, and the PMS's check-out frees the room
and cancels its alarms. Then the failures: serve SIGKILLed between a
posting and its answer (posted once: the PMS knows the sequence), and two
nodes on PostgreSQL, the link's holder killed and the other taking over."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.billing.records import Cdr, Rater, record
from kalliope_tel.billing.service import room_call_hook
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import stays
from kalliope_tel.hotel.models import ClassKind
from kalliope_tel.hotel.panel import panel_rooms
from kalliope_tel.lab.dial import DialReport, lab_dial
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.pms import settings as pms_settings
from kalliope_tel.pms.models import Owed, PmsLink, PmsMessage
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.wakeup import services as wakeup
from kalliope_tel.wakeup.models import Alarm, AlarmState
from tests.billing_support import seed_billing_hotel
from tests.conftest import kalliope
from tests.fax_service_support import free_port
from tests.helpers import ServeNode, apply_lab_config, serve_env
from tests.integration.test_wakeup_serve import stop
from tests.pms_peer import PmsPeer

pytestmark = [pytest.mark.integration, pytest.mark.asterisk, pytest.mark.timeout(300)]


def _setup(url: str, port: int) -> Container:
    container = Container(Settings(database_url=url))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as s:
        seed_billing_hotel(s, accounts=1)
        pbx = get_pbx(s)
        wakeup.update_settings(s, pbx, name="Wake-up", number="900", message="beep", attempts=1, ring_timeout=8,
                               digit_timeout=4, confirm_answer=True, confirm_listen=False)  # fmt: skip
        pms_settings.update(s, pbx, {"enabled": True, "host": "127.0.0.1", "port": port, "room_status": True}, 0)
    return container


def _node(state: LabState, url: str, name: str, **extra: str) -> ServeNode:
    env = serve_env(state, url, KALLIOPE_NODE_NAME=name, KALLIOPE_SCHEDULER_INTERVAL_SECONDS="0.2",
                    KALLIOPE_BILLING_RECONCILE_SECONDS="3600", KALLIOPE_PMS_ALIVE_SECONDS="2", **extra)  # fmt: skip
    return ServeNode(env)


def _until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def _room(container: Container, extension: str) -> dict[str, Any]:
    with transaction(container.sessions, read_only=True) as s:
        return next(r for r in panel_rooms(s, get_pbx(s)) if r["extension"] == extension)


def _messages(container: Container) -> list[PmsMessage]:
    with transaction(container.sessions, read_only=True) as s:
        return list(s.scalars(select(PmsMessage).order_by(PmsMessage.id)))


def _postings(container: Container) -> list[PmsMessage]:
    return [m for m in _messages(container) if m.kind.value == "PS"]


def _alarms(container: Container) -> list[AlarmState]:
    with transaction(container.sessions, read_only=True) as s:
        return list(s.scalars(select(Alarm.state).order_by(Alarm.id)))


def _dial(state: LabState, number: str, seconds: float) -> DialReport:
    client = AriClient(state.ari_url, state.ari_username, state.ari_password, apps=[f"kt-pms-{uuid.uuid4().hex[:6]}"])
    return asyncio.run(lab_dial(client, "101", number, max_duration=seconds))


def _fias_time(container: Container, at: datetime) -> dict[str, str]:
    with transaction(container.sessions, read_only=True) as s:
        local = at.astimezone(ZoneInfo(get_pbx(s).timezone))
    return {"DA": local.strftime("%y%m%d"), "TI": local.strftime("%H%M%S")}


@pytest.mark.both_stores
def test_pms_guest_call_wakeup_maid_and_checkout_on_the_lab(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    peer = PmsPeer()
    container = _setup(fresh_db_url, peer.port)
    lab.cli("database put ktlab/phone 101 phone-press19")
    asyncio.run(apply_lab_config(container, lab))
    node = _node(lab_state, fresh_db_url, f"pms-{uuid.uuid4().hex[:4]}", KALLIOPE_AGI_BIND=lab_state.agi_bind)
    try:
        peer.wait_for("DR", 1, 30)  # linked, and the PMS's (empty) guest list asked for
        # Check-in: the panel shows it within 1 s.
        sent = time.monotonic()
        peer.send("GI", RN="101", GN="Rossi", GF="Ada", CS="1")
        _until(lambda: _room(container, "101")["occupied"], 10, "the check-in on the panel")
        assert time.monotonic() - sent < 1.0
        # The room calls out by the trunk: one posting of the priced amount, acknowledged.
        assert _dial(lab_state, "0612345678", 7).answered
        (posting,) = peer.wait_for("PS", 1, 30)
        assert (posting["RN"], posting["TA"], posting["DD"]) == ("101", "11", "0612345678")  # 0.11 EUR, see billing
        done = _until(lambda: (m := _postings(container)) and m[0].state is Owed.DONE and m, 10, "the answer")
        assert [m.state for m in done] == [Owed.DONE], [(m.kind, m.fields) for m in _messages(container)]
        assert list(peer.posted) == [posting["P#"]]
        # The PMS's wake-up call: the phone rings at the time, presses 1 and 9; the PMS hears OK.
        peer.send("WR", RN="101", **_fias_time(container, datetime.now(UTC) + timedelta(seconds=4)))
        (answer,) = peer.wait_for("WA", 1, 60)
        assert (answer["RN"], answer["AS"]) == ("101", "OK")
        assert _alarms(container) == [AlarmState.CONFIRMED]
        # The maid's code from the room: the PMS gets the room status (dirty).
        _dial(lab_state, "*331", 5)
        (status,) = peer.wait_for("RE", 1, 15)
        assert (status["RN"], status["RS"]) == ("101", "1")
        # Check-out by the PMS: the room is free, its alarm cancelled (and the PMS told so).
        peer.send("WR", RN="101", **_fias_time(container, datetime.now(UTC) + timedelta(hours=3)))
        _until(lambda: len(_alarms(container)) == 2, 10, "the second alarm")
        peer.send("GO", RN="101")
        _until(lambda: not _room(container, "101")["occupied"], 10, "the check-out on the panel")
        assert _alarms(container) == [AlarmState.CONFIRMED, AlarmState.CANCELLED]
        assert [a["AS"] for a in peer.wait_for("WA", 2, 15)] == ["OK", "CX"]
        # Check-out leaves the room dirty: the PMS hears that too.
        assert [r["RS"] for r in peer.wait_for("RE", 2, 15)] == ["1", "1"]
        # Status and doctor show the link, its last record, nothing owed (PS, 2 WA, 2 RE done).
        (row,) = _cli(fresh_db_url, "pms", "status", "--json")
        assert (row["state"], row["messages"]["owed"], row["messages"]["done"]) == (
            "linked",
            0,
            len(_messages(container)),
        )
        checks = json.loads(kalliope("doctor", "--json", env={"KALLIOPE_DATABASE_URL": fresh_db_url}).stdout)
        doctor = {c["name"]: c for c in checks if c["name"] == "pms"}  # the others need a whole installation
        assert doctor["pms"]["ok"] and "linked" in doctor["pms"]["detail"], doctor
    except AssertionError:
        print(stop(node)[-6000:])
        raise
    finally:
        lab.cli("database del ktlab/phone 101")
        if node.poll() is None:
            stop(node)
        peer.close()
        container.close()


def _cli(url: str, *args: str) -> Any:
    done = kalliope(*args, env={"KALLIOPE_DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _price_call(container: Container, n: int) -> None:
    """A priced call from room 101 (billing's own recording, the posting owed with it)."""
    start = datetime.now(UTC)
    cdr = Cdr(uniqueid=f"18000.{n}", linkedid=f"18000.{n}", sequence=n, channel="PJSIP/101-00000001",
              dst_channel=f"PJSIP/lab-trunk-{n:08x}", disposition="ANSWERED", start=start,
              answer=start + timedelta(seconds=1), end=start + timedelta(seconds=31), pbx="default",
              extension="101", dialled=f"06{n:08d}", out="standard", line_var="")  # fmt: skip
    with transaction(container.sessions) as s:
        assert record(s, "", cdr, source="ami", node="test", rater=Rater(room_call_hook(container)))


def test_serve_killed_between_posting_and_answer_posts_once(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    peer = PmsPeer(answer_postings=False, guests={"101": "Rossi"})
    container = _setup(fresh_db_url, peer.port)
    name = f"pms-kill-{uuid.uuid4().hex[:4]}"
    node = _node(lab_state, fresh_db_url, name, KALLIOPE_AGI_BIND=f"127.0.0.1:{free_port()}")
    second = None
    try:
        _until(lambda: _room(container, "101")["occupied"], 30, "the resync's guest")
        _price_call(container, 1)
        (first,) = peer.wait_for("PS", 1, 20)  # sent, and the PMS says nothing yet
        node.kill()  # SIGKILL: the answer will never be recorded by this node
        node.finish(10, terminate=False)
        assert [m.state for m in _postings(container)] == [Owed.SENT]
        peer.answer_postings = True
        second = _node(lab_state, fresh_db_url, name, KALLIOPE_AGI_BIND=f"127.0.0.1:{free_port()}")
        _until(lambda: [m.state for m in _postings(container)] == [Owed.DONE], 30, "the posting answered")
        _price_call(container, 2)
        _until(lambda: len(peer.posted) == 2, 20, "the next posting")
        # The first posting arrived twice with one P#: the PMS posted it once.
        resent = [r for r in peer.records("PS") if r["P#"] == first["P#"]]
        # P# is the message's id, shared with room status (RE), so the next posting's is not always first + 1.
        postings = [str(m.id) for m in _postings(container)]
        assert len(resent) == 2 and peer.repeats == 0 and list(peer.posted) == postings and postings[0] == first["P#"]
        assert [m.tries for m in _postings(container)] == [2, 1]
    except AssertionError:
        print(stop(second or node)[-6000:])
        raise
    finally:
        for proc in (node, second):
            if proc is not None and proc.poll() is None:
                stop(proc)
        peer.close()
        container.close()


def _holder(container: Container) -> str | None:
    with transaction(container.sessions, read_only=True) as s:
        link = s.scalars(select(PmsLink)).one()
        return link.claimed_by if link.lease_until and link.lease_until > datetime.now(UTC) else None


def test_two_nodes_on_postgresql_the_other_takes_the_link_and_resyncs(
    db_backend: str, lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    if db_backend != "postgresql":
        pytest.skip("several nodes share PostgreSQL (SQLite is one node's store)")
    peer = PmsPeer(guests={"101": "Rossi"})
    container = _setup(fresh_db_url, peer.port)
    names = [f"pms-{x}-{uuid.uuid4().hex[:4]}" for x in "ab"]
    nodes = {n: _node(lab_state, fresh_db_url, n, KALLIOPE_AGI_BIND=f"127.0.0.1:{free_port()}") for n in names}
    try:
        holder = _until(lambda: _holder(container), 30, "a node holds the link")
        peer.wait_for("DR", 1, 20)
        assert peer.connections == 1  # one node at a time
        _until(lambda: _room(container, "101")["occupied"], 10, "the resync's guest")
        nodes[holder].kill()
        killed = time.monotonic()
        other = next(n for n in names if n != holder)
        _until(lambda: _holder(container) == other, 30, "the other node takes the link")
        peer.wait_for("DR", 2, 30 - (time.monotonic() - killed))
        took = time.monotonic() - killed
        assert took < 30, took
        # It resynchronised: a guest the PMS changed meanwhile is followed.
        with transaction(container.sessions) as s:
            stays.check_out(s, get_pbx(s), "101")
        _cli(fresh_db_url, "pms", "resync", "--json")
        _until(lambda: _room(container, "101")["occupied"], 15, "the asked resync")
        _price_call(container, 1)
        _until(lambda: len(peer.posted) == 1, 20, "a posting by the new holder")
        assert [m.sent_by for m in _postings(container)] == [other]
    finally:
        for proc in nodes.values():
            if proc.poll() is None:
                stop(proc)
        peer.close()
        container.close()


def test_twenty_real_calls_while_the_pms_is_away_are_posted_once_each_in_order(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    """The suite's variant of the outage: 20 calls by the lab's trunk while the
    PMS is away ('bench pms' keeps it away 30 s)."""
    peer = PmsPeer(guests={"101": "Rossi"})
    container = _setup(fresh_db_url, peer.port)
    with transaction(container.sessions) as s:
        stays.check_in(s, get_pbx(s), "101", "Rossi", outbound=ClassKind.STANDARD)
    asyncio.run(apply_lab_config(container, lab))
    node = _node(lab_state, fresh_db_url, f"pms-out-{uuid.uuid4().hex[:4]}", KALLIOPE_AGI_BIND=lab_state.agi_bind)
    try:
        peer.wait_for("DR", 1, 30)
        peer.drop(120)  # away until the calls are made (a room's phone makes one call at a time)
        numbers = [f"06{n:08d}" for n in range(1, 21)]
        reports = [_dial(lab_state, number, 0.5) for number in numbers]
        assert all(report.answered for report in reports), [r for r in reports if not r.answered][:2]
        _until(lambda: len(_postings(container)) == 20, 30, "20 calls priced, 20 postings owed")
        assert peer.records("PS") == []  # the PMS was away for every one
        peer.back()
        posted = _until(lambda: len(peer.posted) == 20 and peer.posted, 60, "20 postings after the PMS returned")
        assert list(posted) == [str(m.id) for m in _postings(container)]  # in order of P#
        assert sorted(p["DD"] for p in posted.values()) == numbers and peer.repeats == 0
        assert len(peer.records("PS")) == 20  # each sent once
    except AssertionError:
        print(stop(node)[-6000:])
        raise
    finally:
        if node.poll() is None:
            stop(node)
        peer.close()
        container.close()
