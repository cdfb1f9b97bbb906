"""Engines and sessions from the operator's database URL.

Operators write plain ``sqlite:///path`` or ``postgresql://user@host/db``; the
driver is chosen here (the standard library's sqlite3, psycopg 3) so the URL in
the configuration never names a Python package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kalliope_tel.asterisk import config_serial
from kalliope_tel.changes import record as changes
from kalliope_tel.files import private_file


def normalise_url(raw: str) -> URL:
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own implicit BEGIN breaks SAVEPOINT and delays locking; let
    # SQLAlchemy emit BEGIN itself (the documented recipe).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; foreign keys are off by default.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        # The hot reader's long-lived connection: a BEGIN here was never
        # ended, so it read one snapshot forever (a check-in done elsewhere
        # was not seen by the per-call handlers).
        return
    # IMMEDIATE takes the write lock up front. A deferred transaction that
    # reads and then writes fails at once with "database is locked" when
    # another connection wrote meanwhile (WAL snapshot; busy_timeout does not
    # apply): seen with ten res_fax receptions finishing together.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(IMMEDIATE) else "BEGIN")


IMMEDIATE = "kalliope_immediate"


def store_busy(exc: BaseException) -> bool:
    """SQLite's write lock still held by another process after busy_timeout
    (a long CLI import, a backup): the work is retried later, never a crash."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


def make_engine(raw_url: str, **kwargs: Any) -> Engine:
    url = normalise_url(raw_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            # Owner-only from the first byte: the store holds SIP digest
            # hashes and guests' names (its -wal and -shm files follow suit).
            private_file(Path(url.database))
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    # Every change of a room (from any writer) reaches the live panels, and
    # every change of what Asterisk's configuration is made from, serve.
    changes.install(engine)
    config_serial.install(engine)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(
    factory: sessionmaker[Session], *, read_only: bool = False, snapshot: bool = False
) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back on error.

    On SQLite it takes the write lock up front and waits its turn
    (busy_timeout): a deferred transaction that reads and then writes fails
    at once with "database is locked" when another connection committed in
    between (WAL snapshot; busy_timeout does not apply), which with the CLI
    beside ``serve`` failed heartbeats, nightly resets and the CDR file's
    first read now and then. ``read_only``: the block only reads (a page, a
    health check, a periodic look for due work), so it takes no lock and
    waits for nobody. PostgreSQL ignores both. ``snapshot``: every statement
    of the block reads the same moment (PostgreSQL's REPEATABLE READ; a
    SQLite transaction is one snapshot already), as the configuration
    applier needs: the serial it records must be the one it rendered.
    """
    with factory() as session, session.begin():
        options: dict[str, object] | None = None if read_only else {IMMEDIATE: True}
        if snapshot and session.get_bind().dialect.name == "postgresql":
            options = {"isolation_level": "REPEATABLE READ"}
        session.connection(execution_options=options)
        yield session


def insert_ignoring(session: Session, model: type[Any], index_elements: list[str]) -> Any:
    """An INSERT of ``model`` that does nothing when a row with the same
    ``index_elements`` (a unique key) is there: ON CONFLICT DO NOTHING in
    the session's own dialect (PostgreSQL or SQLite). Chain ``.values()``."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing(index_elements=index_elements)
