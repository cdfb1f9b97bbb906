"""``bench logins``: a password-guessing flood against web nodes sharing one
database, and what it does to everyone else's writes.

On SQLite there is one writer at a time, so a login that hashed its password
inside a write transaction stalled every other writer (wake-up outcomes, fax
jobs) for the length of the hash. ``access.login`` hashes outside its
transactions and each node hashes one login at a time (``LOGINS_AT_ONCE``).
This bench measures the result: a writer commits every 20 ms, first with the
nodes idle, then during the flood; it prints how long those writes took
(p50, p99, slowest) next to the flood's logins per second.

Each guess comes from its own address (the nodes trust X-Forwarded-For from
loopback, as behind a proxy), so the per-address limit does not cut the
flood short and every guess costs a hash: that is the worst case.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import typer
from sqlalchemy import text

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction

WRITE_EVERY = 0.02  # seconds: about how often a busy hotel's wake-up outcomes commit


@dataclass
class Writes:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class LoginsReport:
    database: str
    nodes: int
    logins: int
    clients: int
    seconds: float
    logins_per_second: float
    statuses: dict[str, int] = field(default_factory=dict)
    writes_idle: Writes | None = None
    writes_during_flood: Writes | None = None


def _writes(delays: list[float]) -> Writes:
    ordered = sorted(d * 1000 for d in delays)
    if not ordered:
        return Writes(0, 0.0, 0.0, 0.0)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Writes(len(ordered), round(statistics.median(ordered), 1), round(p99, 1), round(ordered[-1], 1))


def _write_until_told(url: str, pipe: Connection) -> None:
    """The writer, in a process of its own (in ours it would wait on our GIL
    behind the guessers' threads and measure that): commits a one-row update
    every ``WRITE_EVERY`` until the pipe says stop, then sends each commit's
    duration."""
    from kalliope_tel.db.engine import make_engine, make_session_factory

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    delays: list[float] = []
    pipe.send("ready")
    while not pipe.poll(WRITE_EVERY):
        started = time.perf_counter()
        with transaction(sessions) as session:
            session.execute(text("UPDATE pbx SET name = name WHERE slug = 'default'"))
        delays.append(time.perf_counter() - started)
    engine.dispose()
    pipe.send(delays)


class _Writer:
    def __init__(self, url: str) -> None:
        self.delays: list[float] = []
        self._pipe, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(target=_write_until_told, args=(url, child))

    def __enter__(self) -> _Writer:
        self._process.start()
        assert self._pipe.recv() == "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        self._pipe.send("stop")
        self.delays = self._pipe.recv()
        self._process.join(10)


def _seed(container: Container) -> None:
    from kalliope_tel.tenancy.services import get_pbx
    from kalliope_tel.users import services as users
    from kalliope_tel.users.models import Role

    with transaction(container.sessions) as session:
        pbx = get_pbx(session)
        users.add_user(session, pbx, "reception", "reception@bench.invalid")
        users.set_password(session, pbx, "reception", "the real password, never guessed")
        users.set_roles(session, pbx, "reception", {Role.RECEPTIONIST})


def _guess(url: str, n: int) -> str:
    # Each guess names another unknown account (one as costly as a real one:
    # the dummy hash), so no per-account limit cuts the flood short either.
    email = f"nobody{n}@bench.invalid"
    address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/login")
        response = client.post(
            "/api/v1/session",
            json={"email": email, "password": f"guess {n}"},
            headers={"x-csrf-token": client.cookies["kt_login_csrf"], "x-forwarded-for": address},
        )
        return str(response.status_code)


def _start_node(url: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALLIOPE_")}
    node = subprocess.Popen(
        [sys.executable, "-m", "kalliope_tel.web.bench_node", url, "--behind-proxy"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert node.stdout is not None
    return node, f"http://127.0.0.1:{int(node.stdout.readline())}"


def run(nodes: int, logins: int, clients: int, idle_seconds: float, database_url: str | None) -> LoginsReport:
    folder = Path(tempfile.mkdtemp(prefix="kt-bench-logins-"))
    url = database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    container = Container(Settings(database_url=url, data_dir=folder))
    migrate.upgrade(container.engine)
    _seed(container)
    started = [_start_node(url) for _ in range(nodes)]
    try:
        with _Writer(url) as idle:
            time.sleep(idle_seconds)
        with _Writer(url) as busy, ThreadPoolExecutor(max_workers=clients) as pool:
            began = time.perf_counter()
            statuses = Counter(pool.map(lambda n: _guess(started[n % nodes][1], n), range(logins)))
            wall = time.perf_counter() - began
    finally:
        for process, _ in started:
            if process.stdin is not None:
                process.stdin.close()
        for process, _ in started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        container.close()
    return LoginsReport(
        database=container.engine.dialect.name,
        nodes=nodes,
        logins=logins,
        clients=clients,
        seconds=round(wall, 2),
        logins_per_second=round(logins / wall, 1),
        statuses=dict(statuses),
        writes_idle=_writes(idle.delays),
        writes_during_flood=_writes(busy.delays),
    )


def bench_command(
    nodes: int = typer.Option(2, help="Web nodes on the one database."),
    logins: int = typer.Option(200, help="Wrong-password logins in the flood."),
    clients: int = typer.Option(16, help="Guessers at once."),
    idle_seconds: float = typer.Option(3.0, help="How long the writer runs alone first (the baseline)."),
    database_url: str | None = typer.Option(None, "--database", help="Database (default: a temporary SQLite)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A login flood on several nodes: logins/s, and how long other writers' commits take meanwhile."""
    from kalliope_tel.cli.context import Steps, print_table

    with Steps(f"bench logins: {logins} guesses from {clients} clients on {nodes} nodes"):
        result = asdict(run(nodes, logins, clients, idle_seconds, database_url))
    if as_json:
        # The target: a write during a flood stays under 100 ms (a wake-up
        # outcome or fax job is never held up by someone guessing passwords).
        print(json.dumps(result | {"target": {"writes_during_flood_max_ms": 100}}))
        return
    rows: list[list[object]] = []
    for key, value in result.items():
        if isinstance(value, dict):
            rows.extend([f"{key} {k}", v] for k, v in value.items())
        else:
            rows.append([key, value])
    print_table("web: a login flood and the other writers", ["figure", "value"], rows)
