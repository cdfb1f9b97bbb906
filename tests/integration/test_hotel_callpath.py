"""The per-call hotel decisions answered by one Core query each
(``hotel.callpath``, what the FastAGI handlers use) agree with the ORM
reference (``hotel.calls``) on every combination of rooms, overrides,
stays, settings, PBXs and counts, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy.orm import Session

from kalliope_tel.extensions import accounts as ext_accounts
from kalliope_tel.hotel import callpath, calls, services, stays
from kalliope_tel.hotel.cleaning import PhoneCodeResult
from kalliope_tel.hotel.models import ClassKind
from kalliope_tel.tenancy.exceptions import PbxNotFound
from kalliope_tel.tenancy.services import create_pbx, get_pbx

pytestmark = pytest.mark.integration
CALLERS = ["101", "102", "103", "104", "555", ""]


def _hotel(db: Session, slug: str | None, *, block: bool, other_class: bool) -> None:
    pbx = get_pbx(db) if slug is None else create_pbx(db, slug, slug.title())
    services.ensure_default_classes(db, pbx, "kt-lab-pstn")
    ext_accounts.create_class(db, pbx, "special", ["_0X."], "kt-lab-pstn")
    services.update_settings(db, pbx, block_room_to_room=block)
    if not other_class:
        services.get_settings(db, pbx).non_room_class_id = None
    services.create_template(db, pbx, "std", calls_limit=2, busy_level=1)
    services.create_room(db, pbx, "101", "plain", "std")
    services.create_room(db, pbx, "102", "overrides", "std", restricted_class="special", calls_limit=0, busy_level=3)
    services.create_room(db, pbx, "103", "standard guest", "std", standard_class="special")
    services.create_room(db, pbx, "104", "restricted guest", "std")
    stays.check_in(db, pbx, "103", "Ada", outbound=ClassKind.STANDARD)
    stays.check_in(db, pbx, "104", "Bo", outbound=ClassKind.RESTRICTED)
    db.flush()


@pytest.mark.parametrize(("block", "other_class"), [(False, True), (True, False)])
def test_core_queries_agree_with_the_orm_reference(db: Session, block: bool, other_class: bool) -> None:
    _hotel(db, None, block=block, other_class=other_class)
    _hotel(db, "acme", block=not block, other_class=not other_class)  # same extensions, other answers
    conn = db.connection()
    compared = 0
    for slug in (None, "acme"):
        pbx = get_pbx(db, slug)
        for caller in CALLERS:
            assert callpath.outbound_class(conn, slug, caller) == calls.outbound_class(db, pbx, caller).class_name
            for target in CALLERS:
                assert callpath.room_to_room(conn, slug, caller, target) == calls.room_to_room(db, pbx, caller, target)
            for active, incoming in itertools.product(range(4), (True, False)):
                expected = calls.call_limits(db, pbx, caller, active, incoming=incoming)
                assert callpath.call_limits(conn, slug, caller, active, incoming=incoming) == expected
                compared += 1
    assert compared == 2 * len(CALLERS) * 8
    # Spot checks that the combinations above are not all trivial.
    assert callpath.outbound_class(conn, None, "103") == "special"  # checked in standard, room override
    assert callpath.outbound_class(conn, None, "101") == "restricted"  # free room
    assert callpath.outbound_class(conn, "acme", "102") == "special"  # free room, restricted override
    assert callpath.call_limits(conn, None, "101", 2, incoming=False) is calls.LimitVerdict.LIMIT
    assert callpath.call_limits(conn, None, "102", 2, incoming=True) is calls.LimitVerdict.OK
    blocked = callpath.room_to_room(conn, None if block else "acme", "101", "102")
    assert blocked is calls.RoomToRoom.BLOCK


def test_unknown_pbx_raises_as_the_orm_path_does(db: Session) -> None:
    conn = db.connection()
    for ask in (
        lambda: callpath.outbound_class(conn, "nowhere", "101"),
        lambda: callpath.room_to_room(conn, "nowhere", "101", "102"),
        lambda: callpath.call_limits(conn, "nowhere", "101", 0, incoming=True),
    ):
        with pytest.raises(PbxNotFound):
            ask()


@pytest.mark.parametrize("enabled", [True, False])
def test_cleaning_code_writes_what_the_orm_path_writes(db: Session, enabled: bool) -> None:
    from sqlalchemy import select

    from kalliope_tel.hotel.cleaning import cleaning_by_phone
    from kalliope_tel.hotel.models import CleaningEvent, Room

    _hotel(db, None, block=False, other_class=True)
    _hotel(db, "acme", block=False, other_class=True)
    for slug in (None, "acme"):
        services.update_settings(db, get_pbx(db, slug), cleaning_enabled=enabled)
    conn = db.connection()

    def state(slug: str | None) -> list[tuple[str, bool, int]]:
        pbx = get_pbx(db, slug)
        rooms = db.scalars(select(Room).where(Room.pbx_id == pbx.id).order_by(Room.extension)).all()
        for room in rooms:
            db.refresh(room)
        events = db.scalars(select(CleaningEvent).where(CleaningEvent.pbx_id == pbx.id)).all()
        return [
            (r.extension, r.clean, sum(1 for e in events if e.room_id == r.id and e.clean == r.clean)) for r in rooms
        ]

    for caller, digit in itertools.product(["101", "102", "555", ""], ["1", "0", "9", ""]):
        core = callpath.cleaning_by_phone(conn, None, caller, digit)
        after_core = state(None)
        orm = cleaning_by_phone(db, get_pbx(db, "acme"), caller, digit)  # the same on the twin PBX
        db.flush()
        assert core == orm, (caller, digit)
        assert after_core == state("acme"), (caller, digit)
    assert callpath.cleaning_by_phone(conn, None, "101", "1") is (
        PhoneCodeResult.DIRTY if enabled else PhoneCodeResult.DISABLED
    )


async def test_the_hot_reader_sees_changes_committed_elsewhere(fresh_db_url: str) -> None:
    """Its long-lived connection must not keep one snapshot (on SQLite a BEGIN
    left open by autobegin did: a check-in was never seen by the handlers)."""
    from kalliope_tel.config import Settings
    from kalliope_tel.container import Container
    from kalliope_tel.db import migrate
    from kalliope_tel.db.engine import transaction

    container = Container(Settings(database_url=fresh_db_url))
    try:
        migrate.upgrade(container.engine)
        with transaction(container.sessions) as session:
            _hotel(session, None, block=False, other_class=True)
        reader = container.hot_reader
        assert await reader.read(lambda c: callpath.outbound_class(c, None, "101")) == "restricted"
        assert await reader.read(lambda c: callpath.room_to_room(c, None, "101", "102")) is calls.RoomToRoom.ALLOW
        with transaction(container.sessions) as session:
            pbx = get_pbx(session)
            stays.check_in(session, pbx, "101", "Ada", outbound=ClassKind.STANDARD)
            services.update_settings(session, pbx, block_room_to_room=True)
        assert await reader.read(lambda c: callpath.outbound_class(c, None, "101")) == "standard"
        assert await reader.read(lambda c: callpath.room_to_room(c, None, "101", "102")) is calls.RoomToRoom.BLOCK
        assert await reader.write(lambda c: callpath.cleaning_by_phone(c, None, "101", "1")) is PhoneCodeResult.DIRTY
        with transaction(container.sessions) as session:
            assert services.room_view(session, get_pbx(session), "101").clean is False
    finally:
        container.close()
