"""Fixtures: migrated databases (SQLite and PostgreSQL), a running lab Asterisk.

Database tests run once per backend (``db_url`` is parametrised). Each test
gets a session inside a transaction that is rolled back afterwards, so tests
never see each other's rows (warehouse's pattern). Tests that need committed
rows seen by other processes ask for ``fresh_db_url`` instead: a new database.

The lab Asterisk is session-scoped and private to each xdist worker (its own
instance name and free ports), so workers run side by side.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kalliope_tel.db import migrate
from kalliope_tel.db.engine import make_engine
from kalliope_tel.lab.instance import LabInstance, LabState

PG_ADMIN_URL = os.environ.get("KALLIOPE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LAB_ROOT = Path(os.environ.get("KALLIOPE_LAB_ROOT", "/var/cache/kalliope-tel/asterisk-sid"))
BACKENDS = [p for p in os.environ.get("KALLIOPE_TEST_DATABASES", "sqlite,postgresql").split(",") if p]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _pg_dsn(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def create_pg_database() -> str:
    name = f"kt_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_database_url(backend: str, tmp_path: Path) -> tuple[str, object]:
    """A new, empty database; returns its URL and what ``drop`` needs."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'kt-{uuid.uuid4().hex[:8]}.sqlite3'}", None
    name = create_pg_database()
    return _pg_dsn(name), name


@pytest.fixture(scope="session", params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_engine(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url, handle = new_database_url(db_backend, tmp_path_factory.mktemp("db"))
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    if handle:
        drop_pg_database(str(handle))


@pytest.fixture
def db(migrated_engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (commits become savepoints)."""
    connection = migrated_engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def fresh_db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """URL of a new, empty database of the current backend (for CLI/process tests)."""
    url, handle = new_database_url(db_backend, tmp_path)
    yield url
    if handle:
        drop_pg_database(str(handle))


# ---------------------------------------------------------------- lab Asterisk


def purge_orphan_labs() -> None:
    """Stop and delete labs of test runs that were killed (their pytest pid is gone).

    CI reuses machines: an interrupted run must not leave Asterisks behind.
    """
    base = LAB_ROOT / "srv/kalliope-lab"
    for path in base.glob("pytest-*") if base.is_dir() else ():
        session_lab = re.fullmatch(r"pytest-(?:main|gw\d+)-(\d+)", path.name)
        if session_lab:
            try:
                os.kill(int(session_lab.group(1)), 0)
                continue  # its test run is alive
            except ProcessLookupError:
                pass
        elif path.stat().st_mtime > time.time() - 3600:
            continue  # a per-test lab of a run that may still be going
        LabInstance(LAB_ROOT, path.name).purge()


@pytest.fixture(scope="session")
def lab() -> Iterator[LabInstance]:
    purge_orphan_labs()
    instance = LabInstance(LAB_ROOT, f"pytest-{_worker()}-{os.getpid()}")
    instance.start()
    yield instance
    instance.purge()


@pytest.fixture(scope="session")
def lab_state(lab: LabInstance) -> LabState:
    state = lab.read_state()
    assert state is not None
    return state


def kalliope(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as an operator would (``stdin``: what is typed or piped in)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KALLIOPE_")}
    full_env["KALLIOPE_LAB_ROOT"] = str(LAB_ROOT)
    full_env["KALLIOPE_HTTP_BIND"] = "127.0.0.1:0"  # 'serve' run this way: any free port
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "kalliope_tel", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def lab_env(state: LabState, **extra: str) -> dict[str, str]:
    """Environment that points the CLI at a lab instance through its name."""
    return {"KALLIOPE_LAB_NAME": state.name, **extra}


@pytest.fixture
def stop_gpg_agents_after(tmp_path: Path) -> Iterator[None]:
    """gpg-agents started for a test's GnuPG homes end with the test."""
    from tests.mail2fax_support import stop_gpg_agents

    yield
    stop_gpg_agents(tmp_path)


# Modules whose tests take longest (the suite's --durations, phase 1), slowest first.
SLOW_FIRST = (
    "test_manager_lab", "test_pbx_isolation", "test_mail2fax_cli", "test_serve_heals", "test_lam_lab",
    "test_pms_lab", "test_billing_cli", "test_bench_commands", "test_suspension_lab", "test_trunks_lab",
)  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Call tests (the lab Asterisk, real-time fax) run on one database:
    SQLite, the embedded store a hotel runs on day one. The store-level tests
    keep both; so does a call test marked ``both_stores`` (its behaviour
    differs per store, as a database outage does; and the browser tests), and
    one that picks its database itself (several nodes: PostgreSQL). So do the
    command-line tests (``commands``): a process per command, the services
    underneath tested on both stores already.
    KALLIOPE_REALTIME_DATABASES=both runs both (a full soak, not the suite)."""
    import inspect

    # The slowest modules first: the workers start on the long tests and
    # finish together on short ones, instead of one worker running a long
    # test alone at the end (xdist hands out tests in this order).
    items.sort(key=lambda item: SLOW_FIRST.index(item.path.stem) if item.path.stem in SLOW_FIRST else len(SLOW_FIRST))
    if os.environ.get("KALLIOPE_REALTIME_DATABASES") == "both":
        return
    deselected = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("db_backend") != "postgresql":
            continue
        if not any(item.get_closest_marker(m) for m in ("realtime", "asterisk", "commands")):
            continue
        if item.get_closest_marker("both_stores") is not None:
            continue
        function = getattr(item, "function", None)
        if function is not None and "pytest.skip(" in inspect.getsource(function):
            continue  # it chooses its database itself
        deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture(scope="module")
def mail() -> Iterator[tuple[object, int]]:
    """A real SMTP server for the module: (its sink of received mails, its port)."""
    from tests.fax_service_support import smtp_server

    with smtp_server() as sink_and_port:
        yield sink_and_port
