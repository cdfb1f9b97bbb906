"""PBXs at the Asterisk edge: two PBXs with the same room numbers on one lab
Asterisk never reach each other, and a third PBX bound to a second Asterisk
gets its wake-up calls there — through a real ``serve`` driving both."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import services as hotel
from kalliope_tel.lab.dial import DialReport, lab_dial
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.tenancy.services import ServerValues, add_asterisk_server, create_pbx, get_pbx
from kalliope_tel.wakeup import services as wakeup
from kalliope_tel.wakeup.models import Alarm, AlarmState
from tests.conftest import LAB_ROOT, kalliope, lab_env
from tests.helpers import ServeNode, serve_env

pytestmark = [pytest.mark.integration, pytest.mark.asterisk, pytest.mark.timeout(240)]


@pytest.fixture
def second_lab(lab_state: LabState) -> Iterator[LabInstance]:
    """Another Asterisk, whose dialplan calls the same FastAGI address as the first."""
    other = LabInstance(LAB_ROOT, f"pytest-pbx2-{os.getpid()}-{uuid.uuid4().hex[:4]}")
    other.start(agi_port=lab_state.agi_port)
    yield other
    other.purge()


def _in(container: Container, work: Callable[[Any], Any]) -> Any:
    # The write lock first: serve writes beside us, and on SQLite a deferred
    # transaction that reads then writes fails if serve committed in between.
    with transaction(container.sessions) as session:
        return work(session)


def _setup(container: Container, second: LabInstance) -> None:
    def work(s: Any) -> None:
        add_asterisk_server(s, "second", ServerValues(lab_name=second.name))
        pbxs = [create_pbx(s, "alpha", "Hotel Alpha"), create_pbx(s, "beta", "Hotel Beta")]
        pbxs.append(create_pbx(s, "gamma", "Hotel Gamma", asterisk="second"))
        for pbx in pbxs:
            hotel.ensure_default_classes(s, pbx, "kt-lab-trunk")
            hotel.create_template(s, pbx, "std", ring_timeout=5)
            for ext in ("101", "102"):
                hotel.create_room(s, pbx, ext, f"{pbx.slug} {ext}", "std", new_accounts=1)
            # Answering confirms: the lab's room phone answers and stays silent.
            wakeup.update_settings(
                s, pbx, message="beep", confirm_answer=False, confirm_listen=False, ring_timeout=10, interval=5
            )

    _in(container, work)


def _calls(lab: LabInstance, key: str) -> int:
    out = lab.cli(f"database get ktlab/calls {key}", check=False)
    return int(out.split("Value:")[1].strip()) if "Value:" in out else 0


def _room_clean(container: Container, slug: str, ext: str) -> bool:
    return bool(
        _in(container, lambda s: hotel.get_room(s, get_pbx(s, slug), ext).clean)  # type: ignore[no-any-return]
    )


async def _dial(state: LabState, pbx: str, caller: str, number: str) -> DialReport:
    client = AriClient(state.ari_url, state.ari_username, state.ari_password, apps=[f"kt-iso-{uuid.uuid4().hex[:6]}"])
    return await lab_dial(client, caller, number, variables={"KT_LAB_PBX": pbx}, max_duration=15)


async def test_pbxs_share_one_asterisk_without_reaching_each_other_and_a_third_uses_its_own(
    lab: LabInstance, lab_state: LabState, second_lab: LabInstance, fresh_db_url: str
) -> None:
    container = Container(Settings(database_url=fresh_db_url))
    migrate.upgrade(container.engine)
    _setup(container, second_lab)
    applied = kalliope("asterisk", "apply", "--json", env=lab_env(lab_state, KALLIOPE_DATABASE_URL=fresh_db_url))
    assert applied.returncode == 0, applied.stderr
    # Each PBX's files went to the Asterisk it lives on, and nowhere else.
    assert "kt-gamma-internal" in second_lab.cli("dialplan show kt-gamma-internal")
    assert "no existence" in lab.cli("dialplan show kt-gamma-internal", check=False)
    for slug in ("alpha", "beta"):
        assert f"kt-{slug}-internal" in lab.cli(f"dialplan show kt-{slug}-internal")
        assert "no existence" in second_lab.cli(f"dialplan show kt-{slug}-internal", check=False)

    proc = ServeNode(
        serve_env(
            lab_state,
            fresh_db_url,
            KALLIOPE_NODE_NAME="iso",
            KALLIOPE_SCHEDULER_INTERVAL_SECONDS="0.2",
            KALLIOPE_LOG_LEVEL="warning",
        )
    )
    try:
        _wait(lambda: _node_links(container) == {"default": True, "second": True}, 20, "serve drives both Asterisks")
        # The first lab is shared by a worker's tests: count from here on.
        before = {key: _calls(lab, key) for key in ("alpha-101", "alpha-102", "beta-101", "beta-102", "gamma-101")}
        # Room 101 of alpha calls 102: alpha's 102 rings, beta's never.
        report = await _dial(lab_state, "alpha", "101", "102")
        assert report.answered, report
        assert _calls(lab, "alpha-102") == before["alpha-102"] + 1
        assert _calls(lab, "beta-102") == before["beta-102"]
        report = await _dial(lab_state, "beta", "101", "102")
        assert report.answered, report
        assert _calls(lab, "beta-102") == before["beta-102"] + 1
        assert _calls(lab, "alpha-102") == before["alpha-102"] + 1

        # The cleaning code stays in the caller's PBX.
        dirty = await _dial(lab_state, "alpha", "101", "*331")
        assert dirty.answered and "auth-thankyou" in dirty.prompts, dirty
        assert not _room_clean(container, "alpha", "101")
        assert _room_clean(container, "beta", "101")

        # Wake-up calls: beta's on the first Asterisk, gamma's on the second.
        due = utcnow() + timedelta(seconds=3)
        ids = {
            slug: _in(container, lambda s, slug=slug: wakeup.set_alarm(s, get_pbx(s, slug), "101", due).id)
            for slug in ("beta", "gamma")
        }
        _wait(lambda: _states(container, ids) == {AlarmState.CONFIRMED}, 60, "both alarms confirmed")
        assert _calls(lab, "beta-101") == before["beta-101"] + 1 and _calls(second_lab, "gamma-101") == 1
        assert _calls(lab, "gamma-101") == before["gamma-101"] and _calls(second_lab, "beta-101") == 0
        assert _calls(lab, "alpha-101") == before["alpha-101"]
    finally:
        out = proc.finish(40)
        container.close()
    assert proc.returncode == 0, out[-3000:]


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.2)


def _states(container: Container, ids: dict[str, int]) -> set[AlarmState]:
    return set(_in(container, lambda s: list(s.scalars(select(Alarm.state).where(Alarm.id.in_(ids.values()))))))


def _node_links(container: Container) -> dict[str, bool]:
    from kalliope_tel.nodes import read_nodes

    nodes = [n for n in _in(container, read_nodes) if n["node"] == "iso" and n["alive"]]
    return dict(nodes[0].get("links", {})) if nodes else {}
