"""Prepared reads on the driver's connection: same rows as Connection.execute
on both databases, typed columns refused, a dropped PostgreSQL connection
retried on a new one by the hot reader."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from kalliope_tel.db.prepared import Prepared
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import create_pbx, get_pbx
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def pbx(db: Session) -> Pbx:
    return get_pbx(db)


def test_same_rows_as_execute_with_named_and_literal_parameters(db: Session, pbx: Pbx) -> None:
    create_pbx(db, "acme", "Acme Hotel")
    create_pbx(db, "zeta", "Zeta Inn")
    db.flush()
    conn = db.connection()
    by_slug = select(Pbx.slug, Pbx.name).where(Pbx.slug == bindparam("slug"))
    assert Prepared(by_slug).rows(conn, {"slug": "acme"}) == [tuple(r) for r in conn.execute(by_slug, {"slug": "acme"})]
    literal = select(Pbx.name).where(Pbx.slug.in_(["zeta"]), Pbx.name != "x")
    assert Prepared(literal).scalar(conn) == "Zeta Inn"
    assert Prepared(by_slug).rows(conn, {"slug": "nosuch"}) == []
    with pytest.raises(LookupError):
        Prepared(select(Pbx.name)).scalar(conn)  # several rows where one was meant


def test_typed_columns_are_refused(db: Session, pbx: Pbx) -> None:
    conn = db.connection()
    with pytest.raises(TypeError, match="plain parameters"):
        Prepared(select(Pbx.created_at)).rows(conn)


async def test_the_hot_reader_retries_a_read_whose_connection_the_server_dropped(fresh_db_url: str) -> None:
    if not fresh_db_url.startswith("postgresql"):
        pytest.skip("a server that drops connections: PostgreSQL")
    from kalliope_tel.config import Settings
    from kalliope_tel.container import Container
    from kalliope_tel.db import migrate
    from kalliope_tel.tenancy.services import pbx_display_name

    container = Container(Settings(database_url=fresh_db_url))
    try:
        migrate.upgrade(container.engine)
        reader = container.hot_reader
        name = await reader.read(pbx_display_name)
        database = fresh_db_url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        assert await reader.read(pbx_display_name) == name  # retried once on a new connection

        def broken(conn: object) -> object:
            return Prepared(select(Pbx.name).where(Pbx.slug == bindparam("slug"))).rows(conn, {"nope": 1})  # type: ignore[arg-type]

        with pytest.raises(KeyError):
            await reader.read(broken)
        bad_sql = Prepared(select(Pbx.name).where(Pbx.id == bindparam("id")))
        with pytest.raises(DBAPIError) as caught:
            await reader.read(lambda c: bad_sql.rows(c, {"id": "not a number"}))
        assert not caught.value.connection_invalidated
    finally:
        container.close()
