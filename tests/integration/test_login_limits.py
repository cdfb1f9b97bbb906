"""Password guessing against two real web nodes on one database: the checks
are counted exactly across nodes, the account's owner still logs in from
their own address, a forged X-Forwarded-For from a peer we do not trust
changes nothing, and the hashes run outside the write lock, one at a time
per node."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from kalliope_tel.accounts import passwords
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import make_engine, make_session_factory, transaction
from kalliope_tel.web.models import AuditEntry
from tests.conftest import drop_pg_database, new_database_url
from tests.web_node import RunningWeb
from tests.web_support import PASSWORD, RECEPTION, seed_web_hotel

pytestmark = [pytest.mark.integration]


@pytest.fixture
def nodes(db_backend: str, tmp_path: Path) -> Iterator[tuple[RunningWeb, RunningWeb, str]]:
    url, handle = new_database_url(db_backend, tmp_path)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        seed_web_hotel(session)
    engine.dispose()
    # Both behind "our proxy" (loopback, the default trusted one): each guesser's address comes in X-Forwarded-For.
    a = RunningWeb(url, tmp_path, http_trust_forwarded=True)
    b = RunningWeb(url, tmp_path, http_trust_forwarded=True)
    yield a, b, url
    a.stop()
    b.stop()
    if handle:
        drop_pg_database(str(handle))


def _attempt(web: RunningWeb, email: str, password: str, forwarded: str) -> int:
    with httpx.Client(base_url=web.url, timeout=30) as client:
        client.get("/login")
        return client.post(
            "/api/v1/session",
            json={"email": email, "password": password},
            headers={"x-csrf-token": client.cookies["kt_login_csrf"], "x-forwarded-for": forwarded},
        ).status_code


def _checked(url: str, ip_prefix: str) -> list[tuple[str, bool]]:
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            rows = session.execute(
                select(AuditEntry.ip, AuditEntry.ok).where(AuditEntry.action == "login", AuditEntry.ip.like(ip_prefix))
            ).all()
    finally:
        engine.dispose()
    return [(ip, bool(ok)) for ip, ok in rows]


def test_ten_guessers_on_two_nodes_get_ten_checks_and_the_owner_gets_in(
    nodes: tuple[RunningWeb, RunningWeb, str],
) -> None:
    a, b, url = nodes
    # The receptionist's usual address: she logged in from it before.
    assert _attempt(a, RECEPTION.email, PASSWORD, "192.0.2.10") == 200
    guesses = [(a if n % 2 else b, f"198.51.100.{n % 10 + 1}") for n in range(60)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        flood = [pool.submit(_attempt, node, RECEPTION.email, f"guess number {n}", ip) for n, (node, ip) in
                 enumerate(guesses)]  # fmt: skip
        time.sleep(0.2)
        owner = pool.submit(_attempt, b, RECEPTION.email, PASSWORD, "192.0.2.10")
        statuses = Counter(f.result() for f in flood)
        assert owner.result() == 200
    # Exactly the account's limit of checks (10 by default) from addresses it had not logged in from:
    # her own first login from 192.0.2.10 was right, so it gave its count back; the guessers had all
    # 10; the rest were refused unchecked.
    checked = _checked(url, "198.51.100.%")
    assert len(checked) == 10 and not any(ok for _, ok in checked), checked
    assert statuses == Counter({401: 10, 429: 50})


def test_a_forged_forwarded_address_from_an_untrusted_peer_changes_nothing(
    nodes: tuple[RunningWeb, RunningWeb, str],
) -> None:
    _a, _b, url = nodes
    tmp = Path(url.removeprefix("sqlite:///")).parent if url.startswith("sqlite") else Path("/tmp")
    # A node whose only trusted proxy is elsewhere: our loopback client is a stranger to it.
    strict = RunningWeb(url, tmp, http_trust_forwarded=True, http_trusted_proxies=["203.0.113.7"])
    try:
        for n in range(5):
            assert _attempt(strict, "ghost@hotel.test", "x", f"10.66.0.{n}") == 401
        # Rotating the forged address does not reset the count: every attempt is the peer's.
        assert _attempt(strict, "ghost@hotel.test", "x", "10.66.0.99") == 429
    finally:
        strict.stop()
    assert _checked(url, "10.66.%") == []
    # Behind a trusted proxy, the right-most untrusted hop counts, not what the client wrote first.
    a = nodes[0]
    assert _attempt(a, "ghost@hotel.test", "x", "6.6.6.6, 10.77.0.1") == 401
    assert _attempt(a, "ghost@hotel.test", "x", "10.77.0.2, 127.0.0.1") == 401
    assert sorted(ip for ip, _ in _checked(url, "10.77.%")) == ["10.77.0.1", "10.77.0.2"]


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_a_login_hashes_outside_the_write_lock_and_one_at_a_time_per_node(
    nodes: tuple[RunningWeb, RunningWeb, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite one writer at a time: a hash inside a write transaction
    stalled every other writer (wake-up outcomes, fax jobs) for its length,
    and a flood of them for seconds. While each hash runs, another connection
    must be able to take the write lock (waiting at most for another login's
    short transaction: a lock held by the hashing login itself would never
    come free while it waits), and a node hashes
    one login at a time. How long other writes take during a flood is
    measured by ``kalliope-tel bench logins``."""
    a, _, url = nodes
    path = make_url(url).database
    assert path
    locked: list[str] = []
    running: list[int] = [0, 0]  # now, most at once
    guard = threading.Lock()

    def probe() -> None:
        with guard:
            running[0] += 1
            running[1] = max(running)
        try:
            con = sqlite3.connect(path, timeout=2, isolation_level=None)
            try:
                con.execute("BEGIN IMMEDIATE")
                con.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                locked.append(str(exc))
            finally:
                con.close()
            time.sleep(0.05)  # long enough that hashes without the limiter would overlap
        finally:
            with guard:
                running[0] -= 1

    real_verify, real_dummy = passwords.verify_password, passwords.dummy_password_check

    def verify(password_hash: str, password: str) -> tuple[bool, str | None]:
        probe()
        return real_verify(password_hash, password)

    def dummy(password: str) -> None:
        probe()
        real_dummy(password)

    monkeypatch.setattr(passwords, "verify_password", verify)
    monkeypatch.setattr(passwords, "dummy_password_check", dummy)
    with ThreadPoolExecutor(max_workers=8) as pool:
        flood = [pool.submit(_attempt, a, RECEPTION.email if n % 2 else f"user{n}@hotel.test", "wrong",
                             f"10.88.{n}.1") for n in range(16)]  # fmt: skip
        assert {f.result() for f in flood} == {401}
    assert _attempt(a, RECEPTION.email, PASSWORD, "10.88.99.1") == 200
    assert locked == []
    assert running == [0, 1]


def test_an_office_behind_one_address_logs_in_past_the_guess_limit(
    nodes: tuple[RunningWeb, RunningWeb, str],
) -> None:
    """Right passwords are not guesses: 25 logins from one office address
    (the per-address limit is 20) all succeed, while 20 wrong ones from
    another address still lock it."""
    a, _b, _url = nodes
    ok = [_attempt(a, RECEPTION.email, PASSWORD, "10.55.0.1") for _ in range(25)]
    assert ok == [200] * 25
    wrong = [_attempt(a, f"ghost{n}@hotel.test", "nope", "10.55.0.2") for n in range(20)]
    assert wrong == [401] * 20
    assert _attempt(a, RECEPTION.email, PASSWORD, "10.55.0.2") == 429
