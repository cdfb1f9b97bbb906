"""Wake-up scheduling through real ``serve`` processes: crash and restart,
and two nodes sharing one PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import services as hotel
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.lab.ports import free_tcp_port
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.wakeup import services as wakeup
from kalliope_tel.wakeup import timeline as wakeup_timeline
from kalliope_tel.wakeup.models import Alarm, AlarmAttempt, AlarmState
from tests.conftest import _pg_dsn, create_pg_database, drop_pg_database
from tests.helpers import ServeNode, apply_lab_config, serve_env

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]


def serve(state: LabState, url: str, node: str) -> ServeNode:
    env = serve_env(
        state,
        url,
        KALLIOPE_AGI_BIND=f"127.0.0.1:{free_tcp_port()}",
        KALLIOPE_NODE_NAME=node,
        KALLIOPE_SCHEDULER_INTERVAL_SECONDS="0.2",
        KALLIOPE_LOG_LEVEL=os.environ.get("KT_TEST_SERVE_LOG", "warning"),
    )
    return ServeNode(env)


def stop(proc: ServeNode) -> str:
    return proc.finish(30)


def setup_hotel(url: str, lab: LabInstance, rooms: list[str], **settings: Any) -> Container:
    container = Container(Settings(database_url=url))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as s:
        pbx = get_pbx(s)
        hotel.ensure_default_classes(s, pbx, "kt-lab-trunk")
        hotel.create_template(s, pbx, "std")
        for room in rooms:
            hotel.create_room(s, pbx, room, "", "std", new_accounts=1)
        wakeup.update_settings(s, pbx, name="Wake-up", number="900", message="beep", **settings)
    asyncio.run(apply_lab_config(container, lab))
    return container


def calls_by_room(lab: LabInstance) -> dict[str, int]:
    out = lab.cli("database show ktlab/calls")
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"/ktlab/calls/(\d+)\s*:\s*(\d+)", out)}


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = create_pg_database()
    yield _pg_dsn(name)
    drop_pg_database(name)


def test_serve_killed_mid_attempt_still_places_exactly_the_configured_calls(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    room = "311" if "sqlite" in fresh_db_url else "312"
    container = setup_hotel(
        fresh_db_url,
        lab,
        [room],
        attempts=3,
        ring_timeout=5,
        interval=1,
        digit_timeout=3,
        confirm_answer=True,
        confirm_listen=False,
    )
    lab.cli(f"database put ktlab/phone {room} phone-answer")  # answers, never presses 1
    before = calls_by_room(lab).get(room, 0)
    try:
        with transaction(container.sessions) as s:
            alarm_id = wakeup.set_alarm(s, get_pbx(s), room, utcnow() + timedelta(seconds=1)).id
        first = serve(lab_state, fresh_db_url, "node-crash")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until attempt 1 is on the phone
            with container.sessions() as s:
                if s.scalar(select(AlarmAttempt.originated_at).where(AlarmAttempt.alarm_id == alarm_id)):
                    break
            time.sleep(0.1)
        time.sleep(0.5)
        first.kill()  # SIGKILL: no goodbye, the call is still up in Asterisk
        first.finish(10, terminate=False)

        second = serve(lab_state, fresh_db_url, "node-crash")  # same node: recovers its attempt at once
        try:
            deadline = time.monotonic() + 60
            state = None
            while time.monotonic() < deadline:
                with container.sessions() as s:
                    state = s.scalar(select(Alarm.state).where(Alarm.id == alarm_id))
                if state in (AlarmState.NOT_ANSWERED, AlarmState.CONFIRMED):
                    break
                time.sleep(0.3)
        finally:
            out = stop(second)
        assert state is AlarmState.NOT_ANSWERED, out
        with transaction(container.sessions) as s:
            line = wakeup_timeline.timeline(s, get_pbx(s), alarm_id)
        assert [a["outcome"] for a in line["attempts"]] == ["lost", "no_digit", "no_digit"]
        assert calls_by_room(lab)[room] - before == 3  # exactly the configured attempts, per Asterisk
        assert "kt-wakeup" not in lab.cli("core show channels concise")  # the orphaned call was hung up
    finally:
        lab.cli(f"database del ktlab/phone {room}")
        container.close()


def test_two_nodes_place_each_of_200_alarms_once(lab: LabInstance, lab_state: LabState, pg_url: str) -> None:
    rooms = [str(4000 + i) for i in range(200)]
    container = setup_hotel(pg_url, lab, rooms, attempts=2, ring_timeout=10, interval=5, max_concurrent=50)
    before = calls_by_room(lab)
    try:
        # Far enough ahead that writing 200 alarms on a loaded CI machine
        # never outruns it (3 s did once: "alarm ... is in the past").
        due = utcnow() + timedelta(seconds=12)
        with transaction(container.sessions) as s:
            pbx = get_pbx(s)
            ids = [wakeup.set_alarm(s, pbx, room, due).id for room in rooms]
        nodes = [serve(lab_state, pg_url, "node-a"), serve(lab_state, pg_url, "node-b")]
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with container.sessions() as s:
                    open_ = s.scalar(
                        select(func.count())
                        .select_from(Alarm)
                        .where(Alarm.id.in_(ids), Alarm.state.in_((AlarmState.SCHEDULED, AlarmState.IN_PROGRESS)))
                    )
                if not open_:
                    break
                time.sleep(0.5)
        finally:
            outputs = [stop(p) for p in nodes]
        with container.sessions() as s:
            states = s.scalars(select(Alarm.state).where(Alarm.id.in_(ids))).all()
            attempts = s.execute(select(AlarmAttempt.alarm_id, AlarmAttempt.node)).all()
        assert states.count(AlarmState.CONFIRMED) == 200, outputs
        assert len(attempts) == 200 and len({a for a, _ in attempts}) == 200  # one attempt each
        after = calls_by_room(lab)
        assert all(after.get(r, 0) - before.get(r, 0) == 1 for r in rooms)  # one call per room, per Asterisk
    finally:
        container.close()
