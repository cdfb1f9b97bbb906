"""Extensions as the core of the store: licences counted, the service PIN,
what reaches Asterisk (endpoint, hint, call; nothing while suspended or once
deleted), a room as an extension with hotel data, the hotel module per PBX,
and a store upgraded from before extensions existed. Both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from kalliope_tel.db import migrate
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import make_engine
from kalliope_tel.dialplan.generator import render
from kalliope_tel.extensions import pins
from kalliope_tel.extensions import services as extensions
from kalliope_tel.extensions.exceptions import InvalidValue
from kalliope_tel.extensions.models import Extension, ExtensionPin, ExtensionStatus, Licence, SipAccount
from kalliope_tel.hotel import services as hotel
from kalliope_tel.hotel.models import Room
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import create_pbx


@pytest.fixture
def pbx(db: Session) -> Pbx:
    return create_pbx(db, "acme", "Acme")


def files(db: Session, pbx: Pbx) -> tuple[str, str]:
    rendered = render(db, pbx, "PJSIP/{account}").files
    return rendered["kalliope/extensions_acme.conf"], rendered["kalliope/pjsip_acme.conf"]


def test_licences_are_counted_per_pbx_and_kind(db: Session, pbx: Pbx) -> None:
    pbx.start_licences, pbx.plus_licences = 2, 1
    extensions.create_extension(db, pbx, "201")
    extensions.create_extension(db, pbx, "202")
    with pytest.raises(InvalidValue) as refused:
        extensions.create_extension(db, pbx, "203")
    assert refused.value.code == "extension.licences_exhausted"
    assert "all 2 Start licences" in str(refused.value)
    extensions.create_extension(db, pbx, "203", licence=Licence.PLUS)
    with pytest.raises(InvalidValue, match="Plus"):
        extensions.create_extension(db, pbx, "204", licence=Licence.PLUS)
    # Another PBX counts its own.
    other = create_pbx(db, "other", "Other")
    other.start_licences = 1
    extensions.create_extension(db, other, "201")
    assert extensions.licences_used(db, pbx) == {Licence.START: 2, Licence.PLUS: 1}
    # No limit (None) is no limit.
    pbx.start_licences = None
    extensions.create_extension(db, pbx, "205")
    with pytest.raises(InvalidValue, match="exists already"):
        extensions.create_extension(db, pbx, "205")


def test_service_pin_three_tries_then_a_pause(db: Session, pbx: Pbx) -> None:
    ext = extensions.create_extension(db, pbx, "201", pin="4321").extension
    row = db.get(ExtensionPin, ext.id)
    assert row is not None and "4321" not in row.pin_hash and row.pin_hash.startswith("pbkdf2_sha256$")
    now = utcnow()
    assert extensions.check_pin(db, pbx, "201", "4321", now) == pins.Verdict.OK
    verdicts = [extensions.check_pin(db, pbx, "201", "0000", now) for _ in range(3)]
    assert verdicts == [pins.Verdict.WRONG] * 3
    # The fourth try within the pause is refused even with the right PIN.
    assert extensions.check_pin(db, pbx, "201", "4321", now + timedelta(seconds=30)) == pins.Verdict.PAUSED
    # After the pause: the right PIN passes and the count starts again.
    later = now + pins.PAUSE + timedelta(seconds=1)
    assert extensions.check_pin(db, pbx, "201", "4321", later) == pins.Verdict.OK
    assert [extensions.check_pin(db, pbx, "201", "0000", later) for _ in range(3)] == [pins.Verdict.WRONG] * 3
    # Another extension's PIN is counted on its own.
    extensions.create_extension(db, pbx, "203", pin="1357")
    assert extensions.check_pin(db, pbx, "203", "1357", later) == pins.Verdict.OK
    # An extension without a PIN, or none at all, never passes.
    extensions.create_extension(db, pbx, "202")
    assert extensions.check_pin(db, pbx, "202", "1234") == pins.Verdict.NO_PIN
    assert extensions.check_pin(db, pbx, "999", "1234") == pins.Verdict.NO_PIN
    with pytest.raises(InvalidValue, match="4 to 8 digits"):
        extensions.set_pin(db, ext, "12a4")


def test_what_reaches_asterisk_follows_the_extension(db: Session, pbx: Pbx) -> None:
    created = extensions.create_extension(db, pbx, "201", name="Anna Rossi")
    extensions.create_extension(db, pbx, "202")
    [(login, password)] = created.credentials.items()
    assert login == "acme-201" and len(password) >= 10
    dialplan, pjsip = files(db, pbx)
    assert "[acme-201]" in pjsip and 'callerid = "Anna Rossi" <201>' in pjsip
    assert "exten => 201,hint,PJSIP/acme-201" in dialplan
    assert "exten => 201,1,Dial(PJSIP/acme-201,30)" in dialplan
    assert "include => kt-acme-extensions" in dialplan
    serial = pbx.config_serial

    extensions.set_status(db, pbx, "201", ExtensionStatus.SUSPENDED)
    db.refresh(pbx)
    assert pbx.config_serial > serial  # serve applies it on its own
    dialplan, pjsip = files(db, pbx)
    assert "acme-201" not in pjsip and "[acme-202]" in pjsip
    assert "exten => 201,1,Hangup(21)" in dialplan and "201,hint" not in dialplan

    extensions.set_status(db, pbx, "201", ExtensionStatus.ACTIVE)
    extensions.set_pin(db, extensions.get_extension(db, pbx, "201"), "1234")
    extensions.delete_extension(db, pbx, "201")
    dialplan, pjsip = files(db, pbx)
    assert "201" not in dialplan.replace("kalliope", "") and "acme-201" not in pjsip
    for model in (SipAccount, ExtensionPin):
        assert db.scalar(select(func.count()).select_from(model).where(text("1=1"))) == 1 - (model is ExtensionPin)
    # The number is free at once.
    extensions.create_extension(db, pbx, "201")


def test_a_room_is_an_extension_with_hotel_data(db: Session, pbx: Pbx) -> None:
    hotel.ensure_default_classes(db, pbx, "kt-lab-trunk")
    hotel.create_template(db, pbx, "std")
    created = hotel.create_room(db, pbx, "101", "Sea view", "std", new_accounts=2)
    ext = extensions.get_extension(db, pbx, "101")
    assert ext.name == "Sea view" and sorted(a.username for a in ext.accounts) == ["101", "101-2"]
    assert sorted(created.new_credentials) == ["101", "101-2"]
    dialplan, pjsip = files(db, pbx)
    assert "[acme-101]" in pjsip and "[acme-101-2]" in pjsip
    # The hotel's context takes the room's calls; the core keeps its hint only.
    assert "exten => 101,hint,PJSIP/acme-101&PJSIP/acme-101-2" in dialplan
    assert "exten => 101,1,Dial(" not in dialplan and "exten => 101,1,Goto(kt-acme-room-101,s,1)" in dialplan
    hotel.update_room(db, pbx, "101", name="Garden")
    assert extensions.get_extension(db, pbx, "101").name == "Garden"
    # An existing extension becomes a room with its accounts.
    extensions.create_extension(db, pbx, "102")
    hotel.create_room(db, pbx, "102", "", "std")
    assert [a.username for a in hotel.find_room(db, pbx, "102").accounts] == ["102"]  # type: ignore[union-attr]
    hotel.delete_room(db, pbx, "101")
    assert extensions.find_extension(db, pbx, "101") is None
    assert db.scalars(select(SipAccount.username).where(SipAccount.pbx_id == pbx.id)).all() == ["102"]
    # Deleting the extension deletes the room (the database's cascade).
    extensions.delete_extension(db, pbx, "102")
    db.expire_all()
    assert db.scalars(select(Room).where(Room.pbx_id == pbx.id)).all() == []


def test_hotel_module_off_leaves_rooms_as_plain_extensions(db: Session, pbx: Pbx) -> None:
    hotel.ensure_default_classes(db, pbx, "kt-lab-trunk")
    hotel.create_template(db, pbx, "std")
    hotel.create_room(db, pbx, "101", "Sea view", "std", new_accounts=1)
    dialplan, _ = files(db, pbx)
    assert "kt-acme-hotel-services" in dialplan and "_*33X" in dialplan
    pbx.hotel_enabled = False
    dialplan, pjsip = files(db, pbx)
    assert "hotel-services" not in dialplan and "*33" not in dialplan and "kt-acme-room-" not in dialplan
    assert "exten => 101,1,Dial(PJSIP/acme-101,30)" in dialplan and "[acme-101]" in pjsip


def test_search_filter_and_sort(db: Session, pbx: Pbx) -> None:
    for number, name, licence in (
        ("203", "Carla", Licence.START),
        ("201", "anna", Licence.PLUS),
        ("202", "Bruno", Licence.START),
    ):
        extensions.create_extension(db, pbx, number, name=name, licence=licence)
    extensions.set_status(db, pbx, "202", ExtensionStatus.SUSPENDED)

    def numbers(**kw: object) -> list[str]:
        return [e.number for e in extensions.list_extensions(db, pbx, extensions.ExtensionFilter(**kw))]  # type: ignore[arg-type]

    assert numbers() == ["201", "202", "203"]
    assert numbers(text="ANN") == ["201"] and numbers(text="20") == ["201", "202", "203"]
    assert numbers(licence=Licence.START) == ["202", "203"]
    assert numbers(status=ExtensionStatus.SUSPENDED) == ["202"]
    assert numbers(sort="name", descending=True) == ["203", "202", "201"]  # Carla, Bruno, anna: case aside
    with pytest.raises(InvalidValue):
        numbers(sort="password")


def test_an_install_with_rooms_upgrades_to_extensions(fresh_db_url: str) -> None:
    engine = make_engine(fresh_db_url)
    try:
        migrate.upgrade(engine, "0018")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO hotel_room_template (pbx_id, name) VALUES (1, 'std')"))
            template = conn.execute(text("SELECT id FROM hotel_room_template")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO hotel_room (pbx_id, extension, name, template_id, clean)"
                    " VALUES (1, '101', 'Room 101', :t, true)"
                ),
                {"t": template},
            )
            room = conn.execute(text("SELECT id FROM hotel_room")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO sip_account (pbx_id, username, realm, ha1, max_contacts, room_id, created_at)"
                    " VALUES (1, '101', 'kalliope', :h, 1, :r, CURRENT_TIMESTAMP),"
                    " (1, 'spare', 'kalliope', :h, 1, NULL, CURRENT_TIMESTAMP)"
                ),
                {"h": "0" * 32, "r": room},
            )
        migrate.upgrade(engine)
        with Session(engine) as session:
            [ext] = session.scalars(select(Extension)).all()
            assert (ext.number, ext.name, ext.licence, ext.status) == (
                "101",
                "Room 101",
                Licence.START,
                ExtensionStatus.ACTIVE,
            )
            assert [a.username for a in ext.accounts] == ["101"]
            spare = session.scalars(select(SipAccount).where(SipAccount.username == "spare")).one()
            assert spare.extension_id is None
            pbx = session.scalars(select(Pbx)).one()
            assert pbx.hotel_enabled and not pbx.suspended and pbx.start_licences is None
        migrate.downgrade(engine, "0018")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT room_id FROM sip_account WHERE username = '101'")).scalar_one() == room
        migrate.upgrade(engine)
        migrate.check(engine)
    finally:
        engine.dispose()
