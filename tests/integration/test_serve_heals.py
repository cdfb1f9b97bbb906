"""A serve that heals: its ARI connection killed under it, its wake-up
scheduler crashing, its database away for ten seconds in the middle of a
confirmed call — and every time the guest is called exactly as configured."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.lab.ports import free_tcp_port
from kalliope_tel.serve import ServeState, serve
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.wakeup import services as wakeup
from kalliope_tel.wakeup.models import Alarm, AlarmAttempt, AlarmState
from tests.conftest import LAB_ROOT, PG_ADMIN_URL
from tests.integration.test_wakeup_serve import calls_by_room, setup_hotel, stop
from tests.integration.test_wakeup_serve import serve as serve_process

pytestmark = [pytest.mark.integration, pytest.mark.asterisk, pytest.mark.timeout(240)]


async def _until(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def _alarm(container: Container, alarm_id: int) -> tuple[AlarmState, int]:
    with transaction(container.sessions) as s:
        alarm = s.get(Alarm, alarm_id)
        assert alarm is not None
        return alarm.state, alarm.attempts_made


def _set_alarm(container: Container, room: str, seconds: float) -> int:
    with transaction(container.sessions) as s:
        return wakeup.set_alarm(s, get_pbx(s), room, utcnow() + timedelta(seconds=seconds)).id


async def test_killed_ari_connection_and_crashed_scheduler_come_back_within_5_s(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    room = "331" if "sqlite" in fresh_db_url else "332"
    await asyncio.to_thread(
        setup_hotel, fresh_db_url, lab, [room], confirm_answer=False, confirm_listen=False, ring_timeout=10
    )
    settings = Settings(
        database_url=fresh_db_url,
        lab_root=LAB_ROOT,
        lab_name=lab_state.name,
        node_name=f"heal-{room}",
        agi_bind=f"127.0.0.1:{free_tcp_port()}",
        http_bind="127.0.0.1:0",
        scheduler_interval_seconds=0.2,
    )
    container = Container(settings)
    held: list[ServeState] = []
    runner = asyncio.create_task(serve(container, started=held.append))
    try:
        await _until(lambda: bool(held) and held[0].context.links[0].client.connected.is_set(), 20, "serve up")
        state = held[0]
        link = state.context.links[0]

        # 1. The ARI websocket dies under the runtime (the TCP connection is
        #    aborted, as when a firewall or a crash kills it).
        ws = link.client._ws
        assert ws is not None
        ws.transport.abort()
        await _until(lambda: not link.client.connected.is_set(), 5, "the drop is noticed")
        back = await _until(lambda: link.client.connected.is_set() and link.runtime.reconnects >= 1, 5, "ARI back")
        assert back < 5

        # 2. The scheduler's ticks keep failing until it gives up: the
        #    supervisor restarts it and counts the restart.
        scheduler = state.context.parts["wakeup-scheduler@default"]
        real_claim, failures = scheduler._claim, []

        def broken() -> Any:
            if len(failures) < 3:
                failures.append(1)
                raise RuntimeError("forced scheduler crash")
            return real_claim()

        scheduler._claim = broken
        task = state.supervisor.tasks["wakeup@default"]
        seen = await _until(lambda: task.restarts >= 1, 5, "the crash is seen")
        restarted = await _until(lambda: task.state == "running", 5, "the scheduler restarted")
        print(
            f"ARI back {back:.2f} s after the abort; scheduler running again {seen + restarted:.2f} s after the crash"
        )
        assert "forced scheduler crash" in task.last_error
        assert state.status()["tasks"]["wakeup@default"]["restarts"] == 1

        # 3. The next wake-up call is placed and confirmed, once.
        alarm_id = _set_alarm(container, room, 1.5)
        await _until(lambda: _alarm(container, alarm_id)[0] is AlarmState.CONFIRMED, 40, "alarm confirmed")
        assert _alarm(container, alarm_id) == (AlarmState.CONFIRMED, 1)
        assert calls_by_room(lab).get(room) == 1
        assert state.status()["tasks"]["ari@default"]["state"] == "running"
    finally:
        if held:
            held[0].stop.set()
        await asyncio.wait_for(runner, 60)
        container.close()


class Outage:
    """The database away for ``seconds``: PostgreSQL refuses connections and
    drops the open ones; SQLite is locked by another writer (every write
    fails with 'database is locked' once the busy timeout runs out)."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url, self.seconds = url, seconds
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join(self.seconds + 30)

    def _run(self) -> None:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            time.sleep(self.seconds)
            conn.execute("ROLLBACK")
            conn.close()
            return
        name = self.url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            time.sleep(self.seconds)
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.mark.both_stores  # the outage differs: PostgreSQL refuses connections, SQLite stays locked
def test_database_away_during_a_confirmed_call_still_records_it_once(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    """The outcome's write must fail and be retried on both stores: PostgreSQL
    is away 10 s; SQLite is locked 30 s, longer than the writes' waits (the
    timeline's write, about 7 s in, waits busy_timeout's 10 s and fails; the
    outcome's, queued behind it, waits 10 s more and fails), so the retry
    path runs there too."""
    room = "333" if "sqlite" in fresh_db_url else "334"
    # The guest presses 1 at 1 s, hears the message, presses 9 at 4 s and
    # hangs up at 6 s: the outcome is written while the database is away.
    container = setup_hotel(
        fresh_db_url, lab, [room], attempts=3, interval=2, confirm_answer=True, confirm_listen=True, digit_timeout=5
    )
    lab.cli(f"database put ktlab/phone {room} phone-press19")
    proc = serve_process(lab_state, fresh_db_url, f"outage-{room}")
    outage = Outage(fresh_db_url, 30.0 if fresh_db_url.startswith("sqlite") else 10.0)
    out = ""
    try:
        alarm_id = _set_alarm(container, room, 3)
        deadline = time.monotonic() + 30
        while _alarm(container, alarm_id)[0] is not AlarmState.IN_PROGRESS:
            assert time.monotonic() < deadline, "the alarm was never claimed"
            time.sleep(0.05)
        outage.start()
        outage.join()
        deadline = time.monotonic() + 60
        while _alarm(container, alarm_id)[0] is AlarmState.IN_PROGRESS:
            assert time.monotonic() < deadline, "the outcome was never written"
            time.sleep(0.2)
        state, attempts = _alarm(container, alarm_id)
        with transaction(container.sessions) as s:
            rows = list(s.scalars(select(AlarmAttempt).where(AlarmAttempt.alarm_id == alarm_id)))
        assert (state, attempts) == (AlarmState.CONFIRMED, 1), [(a.number, a.outcome, a.cause) for a in rows]
        assert [a.outcome.value for a in rows if a.outcome] == ["confirmed"]
        time.sleep(3)  # a wrongly scheduled retry (interval 2 s) would ring now
        assert calls_by_room(lab).get(room) == 1
    except AssertionError as exc:
        out = stop(proc)
        raise AssertionError(f"{exc}\nserve said:\n{out[-4000:]}") from None
    finally:
        lab.cli(f"database del ktlab/phone {room}")
        out = out or stop(proc)
        container.close()
    assert "wakeup.write_retry" in out, "\n".join(line for line in out.splitlines() if "wakeup" in line)[-3000:]
