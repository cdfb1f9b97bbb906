"""The store on both backends: migrations, the tenancy root, db check."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, Table, select
from sqlalchemy.orm import Session

from kalliope_tel.db import migrate
from kalliope_tel.db.base import Base
from kalliope_tel.db.engine import make_engine, make_session_factory, transaction
from kalliope_tel.extensions import accounts as ext_accounts
from kalliope_tel.tenancy.exceptions import PbxNotFound
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import get_pbx
from tests.conftest import kalliope

pytestmark = pytest.mark.integration


def test_cli_db_upgrade_then_check(fresh_db_url: str) -> None:
    env = {"KALLIOPE_DATABASE_URL": fresh_db_url}
    before = kalliope("db", "check", env=env)
    assert before.returncode == 1
    assert "run 'kalliope-tel db upgrade'" in before.stderr

    up = kalliope("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    head = migrate.head_revision(make_engine(fresh_db_url))
    assert f"at revision {head}" in up.stdout

    check = kalliope("db", "check", env=env)
    assert check.returncode == 0, check.stderr
    assert "models match migrations" in check.stdout


def test_check_detects_a_model_without_migration(fresh_db_url: str) -> None:
    engine = make_engine(fresh_db_url)
    migrate.upgrade(engine)
    migrate.check(engine)
    extra = Table("not_migrated", Base.metadata, Column("id", Integer, primary_key=True))
    try:
        with pytest.raises(migrate.MigrationMismatch, match="not_migrated"):
            migrate.check(engine)
    finally:
        Base.metadata.remove(extra)
        engine.dispose()


def test_downgrade_to_base_and_back(fresh_db_url: str) -> None:
    engine = make_engine(fresh_db_url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    engine.dispose()


def test_default_pbx_exists_and_is_unique(db: Session) -> None:
    pbx = get_pbx(db)
    assert pbx.slug == "default"
    assert pbx.is_default
    assert pbx.created_at.tzinfo is not None
    db.add(Pbx(slug="hotel-roma", name="Hotel Roma", company_id=pbx.company_id))
    db.flush()
    assert get_pbx(db, "hotel-roma").name == "Hotel Roma"
    with pytest.raises(PbxNotFound):
        get_pbx(db, "nope")


def test_rows_are_isolated_between_tests(db: Session) -> None:
    # The PBX added by the previous test was rolled back.
    assert db.scalars(select(Pbx.slug)).all() == ["default"]


def test_upgrading_an_install_with_data_keeps_every_row(fresh_db_url: str) -> None:
    """SQLite rebuilds tables to alter them; with foreign keys on, rebuilding
    'pbx' (0004) cascaded into every hotel table and emptied them."""
    from sqlalchemy import text

    engine = make_engine(fresh_db_url)
    try:
        migrate.upgrade(engine, "0003")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO hotel_outbound_class (pbx_id, name, description, patterns, trunk_context)"
                    " VALUES (1, 'std', '', '[]', 'kt-lab-trunk')"
                )
            )
            conn.execute(text("INSERT INTO hotel_room_template (pbx_id, name) VALUES (1, 'std')"))
            template = conn.execute(text("SELECT id FROM hotel_room_template")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO hotel_room (pbx_id, extension, name, template_id, clean)"
                    " VALUES (1, '101', 'Room 101', :t, true)"
                ),
                {"t": template},
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            counts = [
                conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("hotel_outbound_class", "hotel_room_template", "hotel_room", "pbx")
            ]
            if engine.dialect.name == "sqlite":  # switched back on after the migration
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert counts == [1, 1, 1, 1]
        migrate.check(engine)
    finally:
        engine.dispose()


def test_the_database_refuses_a_row_that_refers_to_another_pbx(db: Session) -> None:
    """Composite keys (pbx_id, <ref>_id): services look rows up per PBX, and
    the database enforces it as well."""
    from sqlalchemy.exc import IntegrityError

    from kalliope_tel.hotel import services as hotel
    from kalliope_tel.hotel.models import Room, Stay
    from kalliope_tel.tenancy.services import create_pbx
    from kalliope_tel.wakeup.models import Alarm

    a, b = create_pbx(db, "pbxa", "A"), create_pbx(db, "pbxb", "B")
    for pbx in (a, b):
        hotel.ensure_default_classes(db, pbx, "kt-lab-trunk")
        hotel.create_template(db, pbx, "std")
    room_a = hotel.create_room(db, a, "101", "A 101", "std").room
    template_a = hotel.get_template(db, a, "std")
    class_a = ext_accounts.get_class(db, a, "standard")
    from kalliope_tel.db.base import utcnow

    bad_rows = [
        Stay(pbx_id=b.id, room_id=room_a.id, room_extension="101", owner="x"),
        Room(pbx_id=b.id, extension="102", name="x", template_id=template_a.id),
        Room(
            pbx_id=b.id,
            extension="103",
            name="x",
            template_id=hotel.get_template(db, b, "std").id,
            standard_class_id=class_a.id,
        ),
        Alarm(pbx_id=b.id, room_id=room_a.id, due_at=utcnow(), next_attempt_at=utcnow()),
    ]
    for row in bad_rows:
        savepoint = db.begin_nested()
        db.add(row)
        with pytest.raises(IntegrityError):
            db.flush()
        savepoint.rollback()
    # The same rows within one PBX are fine.
    db.add(Stay(pbx_id=a.id, room_id=room_a.id, room_extension="101", owner="x"))
    db.flush()


def test_on_sqlite_a_transaction_that_reads_then_writes_waits_for_another_writer_instead_of_failing(
    tmp_path: Path,
) -> None:
    """The CLI beside ``serve``: a unit of work reads, another process commits
    a write meanwhile, then the unit writes. A deferred SQLite transaction
    failed there at once ("database is locked", busy_timeout not applied):
    heartbeats, nightly resets and the CDR file's first read failed now and
    then. ``transaction`` takes the write lock first, so the other writer
    waits its turn and both writes land."""
    url = f"sqlite:///{tmp_path / 'kt.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    other = threading.Thread(target=_rename_default, args=(url, "renamed by the other writer"))
    try:
        with transaction(sessions) as session:
            name = get_pbx(session).name  # the read
            other.start()
            time.sleep(0.3)  # the other writer tries to commit in between (and must wait)
            get_pbx(session).name = name + " and by this one"  # the write
        other.join(15)
        with transaction(sessions, read_only=True) as session:
            assert get_pbx(session).name == "renamed by the other writer"  # it went second, after waiting
    finally:
        engine.dispose()
    assert not other.is_alive()


def _rename_default(url: str, name: str) -> None:
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            get_pbx(session).name = name
    finally:
        engine.dispose()
