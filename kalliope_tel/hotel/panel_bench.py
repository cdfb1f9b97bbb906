"""``bench web``: open panels on one node, a room changing several times a
second; how long from each change's commit until every panel shows it, and
the node's CPU.

The node runs in its own process (``bench_node``: the production app and
change feed). This process writes the changes (a stay's notes carry a
sequence number, committed through the hotel service as the panel or the
CLI would) and holds the panels: one server-sent-events stream each, with a
session of its own. A panel is shown change ``k`` when an event carries
number ``k`` or a later one (a later state replaces an earlier one: the feed
sends states, not history), so every change of every panel gets a latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import typer

from kalliope_tel.bench.agi import _cpu_seconds
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction

ROOM = "101"


@dataclass
class WebReport:
    database: str
    panels: int
    changes: int
    changes_per_second: float
    delivered: int  # (panel, change) pairs shown
    missing: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    node_cpu_percent: float  # of one core, during the changes
    node_cpu_us_per_panel_update: float


def _seed(container: Container, panels: int) -> list[str]:
    """A hotel with room 101 occupied, and ``panels`` receptionist sessions (their cookies)."""
    from kalliope_tel.hotel import services, stays
    from kalliope_tel.tenancy.services import get_pbx
    from kalliope_tel.users import services as users
    from kalliope_tel.users.models import Role
    from kalliope_tel.web import access

    with transaction(container.sessions) as session:
        pbx = get_pbx(session)
        services.ensure_default_classes(session, pbx)
        services.create_template(session, pbx, "std")
        for n in range(1, 21):
            services.create_room(session, pbx, str(100 + n), f"Room {100 + n}", "std")
        stays.check_in(session, pbx, ROOM, "Bench Guest")
        user = users.add_user(session, pbx, "bench", "bench@bench.invalid")
        users.set_roles(session, pbx, "bench", {Role.RECEPTIONIST})
        # Sessions made directly: 200 argon2 checks would only measure argon2.
        return [access.open_session(session, user.account)[0] for _ in range(panels)]


async def _panel(client: httpx.AsyncClient, token: str, ready: asyncio.Event, seen: list[tuple[float, int]]) -> None:
    headers = {"cookie": f"kt_session={token}"}
    async with client.stream("GET", "/api/v1/pbx/default/events", headers=headers) as response:
        response.raise_for_status()
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                if event == "ready":
                    ready.set()
                elif event == "rooms":
                    now = time.monotonic()
                    for room in json.loads(line[5:]):
                        notes = (room.get("stay") or {}).get("notes", "")
                        if room.get("extension") == ROOM and notes.startswith("bench "):
                            seen.append((now, int(notes.split()[1])))


def _write(container: Container, n: int) -> float:
    from kalliope_tel.hotel import stays
    from kalliope_tel.tenancy.services import get_pbx

    with transaction(container.sessions) as session:
        stays.update_stay(session, get_pbx(session), ROOM, notes=f"bench {n}")
    return time.monotonic()


async def _run(container: Container, port: int, pid: int, tokens: list[str], rate: float, seconds: float) -> WebReport:
    limits = httpx.Limits(max_connections=len(tokens) + 10, max_keepalive_connections=len(tokens) + 10)
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=timeout) as client:
        readies = [asyncio.Event() for _ in tokens]
        seen: list[list[tuple[float, int]]] = [[] for _ in tokens]
        tasks = [asyncio.create_task(_panel(client, t, r, s)) for t, r, s in zip(tokens, readies, seen, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        await asyncio.sleep(1.0)
        committed: dict[int, float] = {}
        total = int(rate * seconds)
        cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
        for n in range(1, total + 1):
            committed[n] = await asyncio.to_thread(_write, container, n)
            await asyncio.sleep(max(0.0, wall0 + n / rate - time.monotonic()))
        await asyncio.sleep(2.0)  # the last changes arrive
        cpu, wall = _cpu_seconds(pid) - cpu0, time.monotonic() - wall0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies: list[float] = []
    missing = 0
    for arrivals in seen:
        for k, at in committed.items():
            shown = next((t for t, n in arrivals if n >= k), None)
            if shown is None:
                missing += 1
            else:
                latencies.append(max(0.0, shown - at) * 1000)
    latencies.sort()
    updates = sum(len(a) for a in seen)

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else 0.0

    return WebReport(
        database=container.engine.dialect.name,
        panels=len(tokens),
        changes=total,
        changes_per_second=rate,
        delivered=len(latencies),
        missing=missing,
        p50_ms=round(statistics.median(latencies), 1) if latencies else 0.0,
        p99_ms=pct(0.99),
        max_ms=round(latencies[-1], 1) if latencies else 0.0,
        node_cpu_percent=round(cpu / wall * 100, 1),
        node_cpu_us_per_panel_update=round(cpu / updates * 1e6, 1) if updates else 0.0,
    )


def run(panels: int, rate: float, seconds: float, database_url: str | None) -> WebReport:
    folder = Path(tempfile.mkdtemp(prefix="kt-bench-web-"))
    url = database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    container = Container(Settings(database_url=url, data_dir=folder))
    migrate.upgrade(container.engine)
    tokens = _seed(container, panels)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALLIOPE_")}
    node = subprocess.Popen(
        [sys.executable, "-m", "kalliope_tel.web.bench_node", url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert node.stdout is not None
        port = int(node.stdout.readline())
        return asyncio.run(_run(container, port, node.pid, tokens, rate, seconds))
    finally:
        if node.stdin is not None:
            node.stdin.close()
        try:
            node.wait(15)
        except subprocess.TimeoutExpired:
            node.kill()
        container.close()


def bench_command(
    panels: int = typer.Option(200, help="Open panels (event streams) on the node."),
    rate: float = typer.Option(10.0, help="Changes of one room per second."),
    seconds: float = typer.Option(10.0, help="How long the room keeps changing."),
    database_url: str | None = typer.Option(None, "--database", help="Database (default: a temporary SQLite)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Live panels: commit-to-panel latency (p50, p99) with many panels open, and the node's CPU."""
    from kalliope_tel.cli.context import Steps, print_table

    with Steps(f"bench web: {panels} panels, a room changing {rate:g}/s for {seconds:g} s"):
        result = asdict(run(panels, rate, seconds, database_url))
    if as_json:
        print(json.dumps(result | {"target": {"p99_ms": 1000}}))
        return
    print_table("web: live panels", ["figure", "value"], [[k, v] for k, v in result.items()])
