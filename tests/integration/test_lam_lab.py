"""LAM's phone dial-in on the lab Asterisk: callers type the meeting's PIN
into the production FastAGI handler and meet in ConfBridge, with the
waiting-room rules of the web (guests wait for a moderator, leave with the
last one); a wrong PIN and a call outside the meeting's window are refused."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kalliope_tel.asterisk.agi.server import AgiServer
from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.lab.dial import DialReport, lab_dial
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.lam import services
from kalliope_tel.tenancy.services import get_pbx
from tests.conftest import drop_pg_database, new_database_url
from tests.helpers import apply_lab_config

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]
DIAL_IN = "880"


@pytest.fixture
async def meeting_lab(
    db_backend: str, lab: LabInstance, lab_state: LabState, tmp_path: Any
) -> AsyncIterator[tuple[Container, dict[str, Any]]]:
    url, handle = new_database_url(db_backend, tmp_path)
    container = Container(Settings(database_url=url, data_dir=tmp_path))
    migrate.upgrade(container.engine)
    now = datetime.now(UTC)
    with transaction(container.sessions) as s:
        pbx = get_pbx(s)
        services.update_settings(s, pbx, licences=1, dial_in=DIAL_IN)
        services.create_room(s, pbx, "Blue")
        values = services.MeetingInput("Stand-up", now - timedelta(minutes=5), now + timedelta(minutes=55))
        now_meeting = services.create_meeting(s, pbx, "Blue", values, now=now - timedelta(minutes=5))
        later = services.create_meeting(
            s, pbx, "Blue", services.MeetingInput("Tomorrow", now + timedelta(days=1), now + timedelta(days=1, hours=1))
        )
        pins = {
            "conference": now_meeting.instance_id,
            "guest": now_meeting.guest_pin,
            "moderator": now_meeting.moderator_pin,
            "later": later.guest_pin,
        }
    await apply_lab_config(container, lab)
    agi = AgiServer(container.agi_router(), "127.0.0.1", lab_state.agi_port)
    await agi.start()
    try:
        yield container, pins
    finally:
        await agi.stop(grace=2)
        container.close()
        if handle:
            drop_pg_database(str(handle))


def dial(state: LabState, caller: str, digits: str, seconds: float) -> asyncio.Task[DialReport]:
    client = AriClient(state.ari_url, state.ari_username, state.ari_password, apps=[f"kt-lam-{uuid.uuid4().hex[:6]}"])
    return asyncio.create_task(lab_dial(client, caller, DIAL_IN, digits=digits, digit_delay=1.0, max_duration=seconds))


def members(lab: LabInstance, conference: str) -> dict[str, tuple[str, str]]:
    """Caller id -> (flags, user profile) of each user, as 'confbridge list' shows them:
    A admin, M marked (moderator), W waits for a marked user, E leaves with
    the last one, w waiting now."""
    out = lab.cli(f"confbridge list {conference}")
    return {
        m[3]: (m[1], m[2]) for m in re.findall(r"^(Local/\S+)\s+(\w+)\s+(\S+)\s+\S+\s+\S+\s+(\S+)", out, flags=re.M)
    }


async def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout} s")


async def test_guests_wait_for_the_moderator_and_leave_with_them(
    meeting_lab: tuple[Container, dict[str, Any]], lab: LabInstance, lab_state: LabState
) -> None:
    _, pins = meeting_lab
    conference = pins["conference"]
    wrong = dial(lab_state, "569", "99999999#", 40)
    closed = dial(lab_state, "568", f"{pins['later']}#", 20)
    guests = [dial(lab_state, ext, f"{pins['guest']}#", 45) for ext in ("561", "562")]
    await until(lambda: len(members(lab, conference)) == 2, 20, "two guests in the conference")
    # No moderator yet: both guests wait (flag w), in silence.
    assert members(lab, conference) == {"561": ("WEw", "kt_lam_guest"), "562": ("WEw", "kt_lam_guest")}
    moderator = dial(lab_state, "563", f"{pins['moderator']}#", 14)
    await until(lambda: len(members(lab, conference)) == 3, 20, "the moderator joins: three users")
    # The moderator is in: one conference of three, nobody waiting any more.
    assert members(lab, conference) == {
        "563": ("AM", "kt_lam_moderator"), "561": ("WE", "kt_lam_guest"), "562": ("WE", "kt_lam_guest"),
    }  # fmt: skip
    mod_report = await moderator
    assert mod_report.answered and mod_report.timed_out  # the moderator hung up (our max_duration)
    ended = time.monotonic()
    reports = await asyncio.gather(*guests)
    for report in reports:
        # Disconnected by ConfBridge when the last moderator left, long before their own 45 s.
        assert report.answered and not report.timed_out, report
        assert report.duration < 30, report
    assert time.monotonic() - ended < 5
    assert members(lab, conference) == {}
    bad, early = await asyncio.gather(wrong, closed)
    assert bad.answered and not bad.timed_out and "conf-invalidpin" in " ".join(bad.prompts + bad.applications)
    assert early.answered and not early.timed_out and early.duration < 15
    assert "conf-locked" in " ".join(early.prompts + early.applications)
