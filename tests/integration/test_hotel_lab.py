"""The hotel on the lab Asterisk: generated configuration, service codes,
room-to-room blocking, outbound classes, busy level and failovers.

Calls are placed as lab phones (``lab_dial``); the FastAGI server runs the
production handlers against a committed database of the current backend.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from kalliope_tel.asterisk.agi.server import AgiServer
from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.asterisk.ari.models import StasisStart
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import services, stays
from kalliope_tel.hotel.models import ClassKind, CleaningEvent
from kalliope_tel.lab.dial import DialReport, lab_dial
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.tenancy.services import get_pbx
from tests.conftest import drop_pg_database, new_database_url
from tests.helpers import apply_lab_config, ari_runtime

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]


@dataclass
class HotelLab:
    container: Container
    lab: LabInstance
    state: LabState
    agi: AgiServer

    def change(self, work: Any) -> Any:
        # The write lock first: on SQLite a read-then-write beside serve's writers fails otherwise.
        with transaction(self.container.sessions) as session:
            return work(session, get_pbx(session))

    async def apply(self) -> list[str]:
        return await apply_lab_config(self.container, self.lab)

    async def dial(self, caller: str, number: str, **kwargs: Any) -> DialReport:
        client = AriClient(
            self.state.ari_url,
            self.state.ari_username,
            self.state.ari_password,
            apps=[f"kt-dial-{uuid.uuid4().hex[:6]}"],
        )
        kwargs.setdefault("max_duration", 8)
        return await lab_dial(client, caller, number, **kwargs)


@pytest.fixture(scope="module")
def hotel_db(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, handle = new_database_url(db_backend, tmp_path_factory.mktemp("hotel"))
    container = Container(Settings(database_url=url))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as session:
        pbx = get_pbx(session)
        services.ensure_default_classes(session, pbx, "kt-lab-trunk")
        services.create_template(
            session,
            pbx,
            "std",
            ring_timeout=3,
            calls_limit=3,
            busy_level=1,
            failovers={"noanswer.internal": "600", "noanswer.external": "602"},
        )
        for ext in ("101", "102", "103"):
            services.create_room(session, pbx, ext, f"Room {ext}", "std", new_accounts=1)
    container.close()
    yield url
    if handle:
        drop_pg_database(str(handle))


@pytest.fixture(scope="module")
async def hotel(hotel_db: str, lab: LabInstance, lab_state: LabState) -> AsyncIterator[HotelLab]:
    container = Container(Settings(database_url=hotel_db))
    agi = AgiServer(container.agi_router(), "127.0.0.1", lab_state.agi_port)
    await agi.start()
    env = HotelLab(container, lab, lab_state, agi)
    await env.apply()
    yield env
    await agi.stop(grace=2)
    container.close()


def cleaning_events(h: HotelLab) -> int:
    return int(h.change(lambda s, p: s.scalar(select(func.count()).select_from(CleaningEvent))))


async def test_generated_configuration_loads(hotel: HotelLab) -> None:
    endpoints = hotel.lab.cli("pjsip show endpoints")
    for ext in ("101", "102", "103"):
        assert f"Endpoint:  {ext}" in endpoints
    assert "kt-default-room-102" in hotel.lab.cli("dialplan show kt-default-room-102")
    messages = (hotel.lab.dir / "log" / "messages.log").read_text()
    assert "extensions_default.conf" not in "".join(
        line for line in messages.splitlines() if "ERROR" in line or "WARNING" in line
    )
    assert await hotel.apply() == []  # deterministic: nothing changed, nothing reloaded


async def test_cleaning_codes_from_room_phone(hotel: HotelLab) -> None:
    before = cleaning_events(hotel)
    dirty = await hotel.dial("101", "*331")
    assert dirty.answered and "auth-thankyou" in dirty.prompts
    assert dirty.variables["KALLIOPE_HOTEL_RESULT"] == "dirty"
    assert hotel.change(lambda s, p: services.room_view(s, p, "101").clean) is False

    clean = await hotel.dial("101", "*330")
    assert clean.variables["KALLIOPE_HOTEL_RESULT"] == "clean"
    assert hotel.change(lambda s, p: services.room_view(s, p, "101").clean) is True

    bad_digit = await hotel.dial("101", "*339")
    assert bad_digit.variables["KALLIOPE_HOTEL_RESULT"] == "bad_digit" and "invalid" in bad_digit.prompts
    not_room = await hotel.dial("555", "*331")
    assert not_room.variables["KALLIOPE_HOTEL_RESULT"] == "not_a_room" and "invalid" in not_room.prompts
    assert hotel.change(lambda s, p: services.room_view(s, p, "101").clean) is True
    assert cleaning_events(hotel) == before + 2  # refused codes changed nothing


async def test_room_to_room_blocking(hotel: HotelLab) -> None:
    hotel.change(lambda s, p: services.update_settings(s, p, block_room_to_room=True))
    blocked = await hotel.dial("101", "102")
    assert blocked.prompts == ["cannot-complete-as-dialed"]
    assert "Dial" not in blocked.applications
    other = await hotel.dial("101", "600")
    assert other.answered and other.prompts == ["hello-world", "beep"]

    hotel.change(lambda s, p: services.update_settings(s, p, block_room_to_room=False))
    rings = await hotel.dial("101", "102", max_duration=3)
    assert "Dial" in rings.applications and rings.answered
    assert "cannot-complete-as-dialed" not in rings.prompts


async def test_outbound_class_follows_occupancy(hotel: HotelLab) -> None:
    free = await hotel.dial("101", "0612345678")
    assert free.prompts == ["ss-noservice"] and "KT_TRUNK_DIALLED" not in free.variables
    emergency = await hotel.dial("101", "112")
    assert emergency.variables["KT_TRUNK_DIALLED"] == "112"

    hotel.change(lambda s, p: stays.check_in(s, p, "101", "Mario Rossi", outbound=ClassKind.STANDARD))
    try:
        occupied = await hotel.dial("101", "0612345678")
        assert occupied.variables["KALLIOPE_OUTBOUND_CLASS"] == "standard"
        assert occupied.variables["KT_TRUNK_DIALLED"] == "0612345678"  # the number intact
        hotel.change(lambda s, p: stays.update_stay(s, p, "101", outbound=ClassKind.RESTRICTED))
        restricted = await hotel.dial("101", "0612345678")
        assert restricted.prompts == ["ss-noservice"]
    finally:
        hotel.change(lambda s, p: stays.check_out(s, p, "101"))


async def test_room_over_busy_level_is_busy(hotel: HotelLab) -> None:
    # Hold one answered call on room 102 (its lab phone answers and stays).
    async with ari_runtime(hotel.state) as runtime, runtime.listen() as events:
        held = await runtime.client.originate(
            "Local/102@kt-lab-dial",
            app=runtime.client.apps[0],
            app_args=["held"],
            timeout=10,
            variables={"KT_LAB_FROM": "555"},
        )
        async with asyncio.timeout(10):
            while True:
                event = await events.get()
                if isinstance(event, StasisStart) and event.channel.id == held.id:
                    break
        try:
            busy = await hotel.dial("103", "102")
            assert "Dial" not in busy.applications and "Busy" in busy.applications
            assert busy.far_end_cause == 17  # user busy

            # At its calls limit (1), the room cannot call out either.
            hotel.change(lambda s, p: services.update_room(s, p, "102", calls_limit=1))
            limited = await hotel.dial("102", "600")
            assert limited.prompts == [] and "Busy" in limited.applications
        finally:
            hotel.change(lambda s, p: services.update_room(s, p, "102", clear=["calls_limit"]))
            await runtime.client.hangup(held.id)
    free_again = await hotel.dial("103", "102", max_duration=3)
    assert "Dial" in free_again.applications


async def test_unanswered_calls_follow_failover_of_their_origin(hotel: HotelLab) -> None:
    hotel.lab.cli("database put ktlab/phone 103 phone-noanswer")
    try:
        internal = await hotel.dial("101", "103", max_duration=12)
        assert internal.prompts == ["hello-world", "beep"]  # noanswer.internal -> 600
        external = await hotel.dial("0611111111", "103", origin="external", max_duration=12)
        assert external.prompts == ["vm-goodbye"]  # noanswer.external -> 602
        assert "Dial" in internal.applications and "Dial" in external.applications
    finally:
        hotel.lab.cli("database del ktlab/phone 103")
