"""Wake-up calls on the lab Asterisk, phones as dialplan contexts.

The production engine (WakeupApplication on an AriRuntime) and scheduler run
in-process against a committed database of the current backend.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from kalliope_tel.ari_apps.wakeup import APP_NAME, WakeupApplication
from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.asterisk.ari.runtime import AriRuntime
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import services as hotel
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.wakeup import services as wakeup
from kalliope_tel.wakeup import timeline as wakeup_timeline
from kalliope_tel.wakeup.scheduler import WakeupScheduler
from tests.conftest import drop_pg_database, new_database_url
from tests.helpers import apply_lab_config

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]
ROOMS = {
    "201": "phone-press19",
    "202": "phone-answer",
    "203": "phone-noanswer",
    "204": "phone-busy",
    "205": "phone-press1-hangup",
}


class WakeupLab:
    def __init__(self, container: Container, lab: LabInstance) -> None:
        self.container, self.lab = container, lab

    def change(self, work: Any) -> Any:
        # The write lock first: on SQLite a read-then-write beside serve's writers fails otherwise.
        with transaction(self.container.sessions) as session:
            return work(session, get_pbx(session))

    def alarm_now(self, room: str, **kwargs: Any) -> int:
        return int(self.change(lambda s, p: wakeup.set_alarm(s, p, room, utcnow() + timedelta(seconds=1), **kwargs).id))

    async def until(self, alarm_id: int, states: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.change(lambda s, p: wakeup_timeline.timeline(s, p, alarm_id))
            if line["state"] in states:
                return dict(line)
            await asyncio.sleep(0.3)
        raise AssertionError(f"alarm {alarm_id} still {line['state']}: {line}")

    def calls_to(self, room: str) -> int:
        out = self.lab.cli(f"database get ktlab/calls {room}")
        return int(out.split("Value:")[1]) if "Value:" in out else 0


@pytest.fixture(scope="module")
def wakeup_db(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, handle = new_database_url(db_backend, tmp_path_factory.mktemp("wakeup"))
    container = Container(Settings(database_url=url))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as s:
        pbx = get_pbx(s)
        hotel.ensure_default_classes(s, pbx, "kt-lab-trunk")
        hotel.create_template(s, pbx, "std")
        for room in ROOMS:
            hotel.create_room(s, pbx, room, f"Room {room}", "std", new_accounts=1)
        wakeup.update_settings(
            s,
            pbx,
            name="Hotel Wake-up",
            number="900",
            message="beep",
            attempts=3,
            ring_timeout=5,
            interval=1,
            digit_timeout=3,
            confirm_answer=True,
            confirm_listen=True,
        )
    container.close()
    yield url
    if handle:
        drop_pg_database(str(handle))


@pytest.fixture(scope="module")
async def wl(wakeup_db: str, lab: LabInstance, lab_state: LabState) -> AsyncIterator[WakeupLab]:
    container = Container(Settings(database_url=wakeup_db))
    env = WakeupLab(container, lab)
    await apply_lab_config(container, lab)
    for room, phone in ROOMS.items():
        lab.cli(f"database put ktlab/phone {room} {phone}")
    client = AriClient(
        lab_state.ari_url, lab_state.ari_username, lab_state.ari_password, apps=[f"kt-wakeup-{uuid.uuid4().hex[:6]}"]
    )
    runtime = AriRuntime(client)
    app = WakeupApplication(runtime, container)
    runtime.register(APP_NAME, app)
    scheduler = WakeupScheduler(container, app, "test-node", tick=0.2)
    tasks = [asyncio.create_task(runtime.run()), asyncio.create_task(scheduler.run(client.connected))]
    await asyncio.wait_for(client.connected.wait(), 10)
    yield env
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()
    await runtime.aclose()
    for room in ROOMS:
        lab.cli(f"database del ktlab/phone {room}")
    container.close()


def kinds(attempt: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in attempt["events"]]


async def test_press_1_listen_press_9_confirms_on_first_attempt(wl: WakeupLab) -> None:
    alarm = wl.alarm_now("201")
    line = await wl.until(alarm, {"confirmed", "not_answered"})
    assert line["state"] == "confirmed"
    (attempt,) = line["attempts"]
    assert attempt["outcome"] == "confirmed" and attempt["originated_at"]
    events = [(e["kind"], e["detail"]) for e in attempt["events"]]
    # Every step, in order, each with a timestamp.
    expected = [
        ("originated", "Local/201@kt-default-wakeup-dial"),
        ("answered", ""),
        ("digit", "1"),
        ("playback_started", "message"),
        ("playback_finished", "message"),
        ("digit", "9"),
        ("outcome", "confirmed"),
    ]
    positions = [events.index(step) for step in expected]
    assert positions == sorted(positions), events
    assert events[-1][0] == "hangup"
    stamps = [datetime.fromisoformat(e["at"]) for e in attempt["events"]]
    assert stamps == sorted(stamps)
    assert wl.change(lambda s, p: [a.id for a in wakeup.list_finished(s, p)]).count(alarm) == 1


async def test_answer_without_digits_retries_then_alerts_and_ack_finishes(wl: WakeupLab) -> None:
    alarm = wl.alarm_now("202")
    line = await wl.until(alarm, {"not_answered"}, timeout=90)
    attempts = line["attempts"]
    assert [a["outcome"] for a in attempts] == ["no_digit"] * 3
    for before, after in itertools.pairwise(attempts):
        gap = datetime.fromisoformat(after["started_at"]) - datetime.fromisoformat(before["ended_at"])
        assert gap >= timedelta(seconds=1)  # the configured interval
    assert alarm in wl.change(lambda s, p: [a.id for a in wakeup.alerts(s, p)])
    assert alarm in wl.change(lambda s, p: [a.id for a in wakeup.list_active(s, p)])
    wl.change(lambda s, p: wakeup.acknowledge(s, p, alarm, "reception"))
    assert alarm in wl.change(lambda s, p: [a.id for a in wakeup.list_finished(s, p)])
    assert alarm not in wl.change(lambda s, p: [a.id for a in wakeup.alerts(s, p)])


@pytest.mark.parametrize(("room", "outcome"), [("203", "no_answer"), ("204", "busy")])
async def test_unanswered_and_busy_each_attempt_ends_with_its_cause(wl: WakeupLab, room: str, outcome: str) -> None:
    before = wl.calls_to(room)
    alarm = wl.alarm_now(room, attempts=2)
    line = await wl.until(alarm, {"not_answered"}, timeout=60)
    assert [a["outcome"] for a in line["attempts"]] == [outcome, outcome]
    assert all(a["cause"] for a in line["attempts"])
    if outcome == "no_answer":
        for a in line["attempts"]:
            took = datetime.fromisoformat(a["ended_at"]) - datetime.fromisoformat(a["originated_at"])
            assert timedelta(seconds=4) < took < timedelta(seconds=8)  # the 5 s ring timeout
        assert all("ringing" in kinds(a) for a in line["attempts"])
    assert wl.calls_to(room) - before == 2  # Asterisk's own count of calls placed


async def test_press_1_then_hang_up_is_unconfirmed_and_retried(wl: WakeupLab) -> None:
    alarm = wl.alarm_now("205", attempts=2)
    line = await wl.until(alarm, {"not_answered", "confirmed"}, timeout=60)
    assert [a["outcome"] for a in line["attempts"]] == ["hung_up", "hung_up"]
    assert ("digit", "1") in [(e["kind"], e["detail"]) for e in line["attempts"][0]["events"]]
    assert line["state"] == "not_answered"


async def test_cancelled_alarm_is_never_called(wl: WakeupLab) -> None:
    before = wl.calls_to("201")
    alarm = int(wl.change(lambda s, p: wakeup.set_alarm(s, p, "201", utcnow() + timedelta(seconds=3)).id))
    wl.change(lambda s, p: wakeup.cancel_alarm(s, p, alarm))
    await asyncio.sleep(4)
    assert wl.change(lambda s, p: wakeup_timeline.timeline(s, p, alarm))["attempts"] == []
    assert wl.calls_to("201") == before


async def test_asterisk_crash_during_attempt_is_recorded_and_retried(wl: WakeupLab) -> None:
    alarm = wl.alarm_now("202", attempts=2)  # answers, never presses 1 (3 s digit timeout)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        attempts = wl.change(lambda s, p: wakeup_timeline.timeline(s, p, alarm))["attempts"]
        if attempts and "answered" in kinds(attempts[0]):  # the timeline is written as it happens
            break
        await asyncio.sleep(0.05)
    assert attempts and attempts[0]["outcome"] is None  # still on the phone
    await asyncio.to_thread(wl.lab.restart, crash=True)  # SIGKILL Asterisk mid-call, start it again
    line = await wl.until(alarm, {"not_answered", "confirmed"}, timeout=60)
    assert [a["outcome"] for a in line["attempts"]] == ["lost", "no_digit"]
    assert "lost" in kinds(line["attempts"][0])
