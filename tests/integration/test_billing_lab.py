"""Billing on the lab Asterisk: calls from room 101 leave by the lab's SIP
trunk (PJSIP/lab-trunk, a real outgoing line to the lab itself) and are
recorded by 'serve' from Asterisk's CDRs: live from AMI, and from the CDR
file for a call made while serve was stopped; two nodes on one PostgreSQL
record each call once. Costs follow the profile's increments; the stay's
XLSX report is read back with openpyxl.

The lab's CDR file is shared by the worker's tests, and serve reconciles
all of it into this test's store: assertions look at this test's calls
only (by number and start time).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.billing.models import CallRecord
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import stays
from kalliope_tel.hotel.models import ClassKind
from kalliope_tel.lab.dial import DialReport, lab_dial
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.nodes import read_nodes
from kalliope_tel.tenancy.services import get_pbx
from tests.billing_support import seed_billing_hotel
from tests.conftest import kalliope
from tests.fax_service_support import free_port, until
from tests.helpers import ServeNode, apply_lab_config, serve_env

pytestmark = [pytest.mark.integration, pytest.mark.asterisk, pytest.mark.timeout(300)]


def _setup(url: str) -> Container:
    container = Container(Settings(database_url=url))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as session:
        seed_billing_hotel(session, accounts=1)
    return container


async def _dial(state: LabState, number: str, seconds: float) -> DialReport:
    client = AriClient(state.ari_url, state.ari_username, state.ari_password, apps=[f"kt-bill-{uuid.uuid4().hex[:6]}"])
    return await lab_dial(client, "101", number, max_duration=seconds)


def _serve(state: LabState, url: str, node: str, **extra: str) -> ServeNode:
    """A node; it reconciles the CDR file at start and then only hourly, so
    the live AMI path, not the file, records what this test watches live.
    (At the default 30 s, a loaded CI machine once let the file's pass find a
    call before the AMI event's write: recorded, but as "file".)"""
    env = {"KALLIOPE_BILLING_RECONCILE_SECONDS": "3600", **extra}
    return ServeNode(serve_env(state, url, KALLIOPE_NODE_NAME=node, **env))


async def _ready(container: Container, *nodes: str) -> None:
    """Until every node's ARI and AMI links are up (AMI brings the Cdr events)."""

    def check() -> bool:
        with transaction(container.sessions) as session:
            rows = {n["node"]: n for n in read_nodes(session)}
        return all(
            rows.get(n, {}).get("links") == {"default": True} and rows.get(n, {}).get("ami") == {"default": True}
            for n in nodes
        )

    await until(check, 40, f"nodes {nodes} connected")


def _calls(container: Container, since: datetime, *numbers: str) -> list[CallRecord]:
    with transaction(container.sessions) as session:
        return list(
            session.scalars(
                select(CallRecord)
                .where(CallRecord.start_at >= since, CallRecord.dialled.in_(numbers))
                .order_by(CallRecord.start_at)
            )
        )


def _cli(url: str, *args: str) -> Any:
    done = kalliope(*args, env={"KALLIOPE_DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


async def test_room_calls_are_recorded_priced_and_reported_and_a_call_while_serve_is_down_too(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    container = _setup(fresh_db_url)
    try:
        await apply_lab_config(container, lab)
        with transaction(container.sessions) as session:
            stay_id = stays.check_in(session, get_pbx(session), "101", "Ada Rossi", outbound=ClassKind.STANDARD).id
        since = datetime.now(UTC)
        node = f"bill-{uuid.uuid4().hex[:4]}"
        serve = _serve(lab_state, fresh_db_url, node)
        try:
            await _ready(container, node)
            talk = await _dial(lab_state, "0612345678", 7)
            emergency = await _dial(lab_state, "112", 10)
            assert talk.answered and emergency.answered, (talk, emergency)
            calls = await until(
                lambda: (c := _calls(container, since, "0612345678", "112")) and len(c) == 2 and c, 20, "two calls"
            )
        finally:
            output = serve.finish(30)
        mobile, sos = calls
        assert (mobile.line, mobile.direction.value, mobile.disposition) == ("lab-trunk", "outbound", "ANSWERED"), (
            output[-2000:]
        )
        assert 5 <= mobile.billsec <= 8 and mobile.extension == "101" and mobile.stay_id == stay_id
        assert mobile.uniqueid and mobile.linkedid and mobile.source == "ami" and mobile.recorded_by == node
        # prefix 06, 30/6 increments: up to 30 s billed as 30 s; 0.05 + 0.12 * 30/60 = 0.11 EUR.
        assert (mobile.billed_seconds, mobile.cost, mobile.rule_key, mobile.profile_name) == (
            30,
            1100,
            "prefix:06",
            "lab",
        )
        assert (sos.line, sos.rule_key, sos.cost, sos.stay_id) == ("lab-trunk", "exact:112", 0, stay_id)
        assert 1 <= sos.billsec <= 3 and sos.billed_seconds == sos.billsec
        # The room's cost since check-in is their sum.
        room = _cli(fresh_db_url, "billing", "rooms", "101", "--json")
        assert (room["total"], room["unpriced"], room["stay"]) == ({"EUR": "0.1100"}, 0, stay_id)
        assert [c["number"] for c in room["calls"] if c["number"] in ("0612345678", "112")] == ["0612345678", "112"]
        _cli(fresh_db_url, "hotel", "checkout", "101", "--yes")
        report = tmp_path / "stay.xlsx"
        _cli(fresh_db_url, "billing", "report", str(stay_id), "--output", str(report), "--json")
        rows = [list(r) for r in load_workbook(report).active.iter_rows(values_only=True)]  # type: ignore[union-attr]
        header = rows.index(["Date", "Time", "Number", "Line", "Duration (s)", "Cost", "Currency"])
        body = [r for r in rows[header + 1 :] if r[2] in ("0612345678", "112") or r[0] == "Total"]
        assert [(r[2], r[3], r[4], r[5]) for r in body[:2]] == [
            ("0612345678", "lab-trunk", mobile.billsec, 0.11),
            ("112", "lab-trunk", sos.billsec, 0),
        ]
        assert body[-1][0] == "Total" and body[-1][5] == 0.11 and body[-1][6] == "EUR"

        # serve stopped: the room phone still reaches 112 (the fallback class)
        # and Asterisk's CDR file keeps the call until serve is back.
        down = datetime.now(UTC)
        assert (await _dial(lab_state, "112", 10)).answered
        assert _calls(container, down, "112") == []
        serve = _serve(lab_state, fresh_db_url, node)
        try:
            (late,) = await until(lambda: _calls(container, down, "112"), 30, "the call made while serve was down")
        finally:
            serve.finish(30)
        assert (late.source, late.line, late.rule_key, late.cost, late.stay_id) == (
            "file",
            "lab-trunk",
            "exact:112",
            0,
            None,
        )
    finally:
        container.close()


async def test_two_nodes_on_postgresql_record_each_call_once(
    db_backend: str, lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    if db_backend != "postgresql":
        pytest.skip("several nodes share PostgreSQL (SQLite is one node's store)")
    container = _setup(fresh_db_url)
    try:
        await apply_lab_config(container, lab)
        with transaction(container.sessions) as session:
            stays.check_in(session, get_pbx(session), "101", "Bo", outbound=ClassKind.STANDARD)
        since = datetime.now(UTC)
        nodes = [f"bill-{n}-{uuid.uuid4().hex[:4]}" for n in "ab"]
        serves = [
            _serve(lab_state, fresh_db_url, nodes[0]),
            _serve(lab_state, fresh_db_url, nodes[1], KALLIOPE_AGI_BIND=f"127.0.0.1:{free_port()}"),
        ]
        numbers = ["0611000001", "0611000002", "0611000003"]
        try:
            await _ready(container, *nodes)
            for number in numbers:
                assert (await _dial(lab_state, number, 3)).answered
            calls = await until(lambda: (c := _calls(container, since, *numbers)) and len(c) == 3 and c, 20, "3 calls")

            def figures() -> dict[str, dict[str, Any]]:
                with transaction(container.sessions) as session:
                    return {n["node"]: n.get("billing", {}) for n in read_nodes(session) if n["node"] in nodes}

            # Both nodes were offered every call (AMI); together they wrote each once.
            # The figures are each node's heartbeat (every 5 s): wait for both
            # sides of the count, not the first to arrive.
            def settled(f: dict[str, dict[str, Any]]) -> bool:
                offered = sum(v.get("already_recorded", 0) for v in f.values())
                written = sum(v.get("recorded_from_ami", 0) + v.get("recorded_from_file", 0) for v in f.values())
                return offered >= 3 and written >= 3

            seen = await until(lambda: (f := figures()) and settled(f) and f, 20, "figures")
        finally:
            for serve in serves:
                serve.finish(30)
        assert sorted(c.dialled for c in calls) == numbers
        assert len({(c.uniqueid, c.sequence) for c in calls}) == 3
        assert {c.recorded_by for c in calls} <= set(nodes)
        assert all(c.cost == 1100 for c in calls)
        written = sum(v["recorded_from_ami"] + v["recorded_from_file"] for v in seen.values())
        assert written >= 3, seen  # (plus the earlier calls of the lab's file)
    finally:
        container.close()
