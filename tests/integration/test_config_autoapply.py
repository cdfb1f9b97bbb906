"""Changes reach Asterisk on their own: a change of what the configuration is
made from bumps the PBX's config serial (a guest's stay does not, a rolled
back change does not), and a running ``serve`` writes and reloads it, so a
room added through the services (as the browser adds it) rings on the lab
phone within 10 s with no command run."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from kalliope_tel.asterisk.config_state import state_of
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import services as hotel
from kalliope_tel.hotel import stays
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.tenancy.services import get_pbx
from tests.integration.test_hotel_lab import HotelLab
from tests.integration.test_wakeup_serve import calls_by_room, setup_hotel, stop
from tests.integration.test_wakeup_serve import serve as serve_process

pytestmark = [pytest.mark.integration]


def _state(container: object) -> dict[str, object]:
    with transaction(container.sessions, read_only=True) as s:  # type: ignore[attr-defined]
        return state_of(s, get_pbx(s))


def _serial(container: object) -> int:
    with transaction(container.sessions, read_only=True) as s:  # type: ignore[attr-defined]
        return get_pbx(s).config_serial


@pytest.mark.asterisk
def test_what_reaches_asterisk_bumps_the_serial_and_nothing_else_does(lab: LabInstance, fresh_db_url: str) -> None:
    container = setup_hotel(fresh_db_url, lab, ["331"])
    try:
        before = _serial(container)
        with transaction(container.sessions) as s:
            stays.check_in(s, get_pbx(s), "331", "Anna Neri")  # a stay: the panel's, not Asterisk's
        assert _serial(container) == before
        with transaction(container.sessions) as s:
            hotel.create_room(s, get_pbx(s), "332", "", "std", new_accounts=1)
        added = _serial(container)
        assert added > before  # once per flush that touched such rows: it only ever goes up
        with pytest.raises(RuntimeError), transaction(container.sessions) as s:
            hotel.create_room(s, get_pbx(s), "333", "", "std")
            raise RuntimeError("rolled back")
        assert _serial(container) == added
        with transaction(container.sessions) as s:
            hotel.update_settings(s, get_pbx(s), block_room_to_room=True)
        assert _serial(container) > added
    finally:
        container.close()


@pytest.mark.asterisk
def test_a_room_added_while_serve_runs_rings_within_10_s_with_no_command_run(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = "341" if "sqlite" in fresh_db_url else "342"
    new = "343" if "sqlite" in fresh_db_url else "344"
    container = setup_hotel(fresh_db_url, lab, [room])
    lab.cli(f"database put ktlab/phone {new} phone-answer")
    monkeypatch.setenv("KT_TEST_SERVE_LOG", "info")  # serve.started, and what it applied
    proc = serve_process(lab_state, fresh_db_url, f"apply-{uuid.uuid4().hex[:4]}")
    out = ""
    try:
        deadline = time.monotonic() + 30
        while '"serve.started"' not in proc.output():
            assert time.monotonic() < deadline, proc.output()[-2000:]
            time.sleep(0.2)
        with transaction(container.sessions) as s:
            hotel.create_room(s, get_pbx(s), new, "", "std", new_accounts=1)
        added = time.monotonic()
        # The dialplan Asterisk runs now knows the room: no 'asterisk apply' was run.
        while f"'{new}' =>" not in lab.cli(f"dialplan show {new}@kt-default-rooms", check=False):
            assert time.monotonic() - added < 10, "\n".join(
                line for line in proc.output().splitlines() if "asterisk" in line or "error" in line
            )[-3000:]
            time.sleep(0.25)
        # The administration pages' state: applied, up to the room's serial.
        while (state := _state(container))["state"] != "applied":
            assert time.monotonic() - added < 15, state
            time.sleep(0.25)
        assert state["applied_serial"] >= _serial(container) and state["applied_at"]
        before = calls_by_room(lab).get(new, 0)
        site = HotelLab(container, lab, lab_state, None)  # type: ignore[arg-type]
        report = asyncio.run(site.dial(room, new, max_duration=4))
        assert report.answered, report
        assert calls_by_room(lab).get(new, 0) == before + 1
    except AssertionError:
        out = stop(proc)
        raise
    finally:
        lab.cli(f"database del ktlab/phone {new}")
        out = out or stop(proc)
        container.close()
    assert '"asterisk.config_reloaded"' in out or '"asterisk.config_written"' in out, out[-2000:]
