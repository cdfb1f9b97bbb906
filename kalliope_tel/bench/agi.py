"""FastAGI throughput and latency, over loopback, with the real handler stack.

The server runs in its own process pinned to one core (the target is "per
core"), with the production router and the ``pbx-name`` handler, which does one
database read and one ``SET VARIABLE``. The load generator runs in this process
on the other core and speaks the AGI protocol as Asterisk does: it sends the
``agi_*`` block, answers each command with ``200 result=1`` and waits for the
server to close the connection.

Two phases: a closed loop (``concurrency`` clients back to back) measures the
most requests per second; an open loop at a fixed rate measures latency
(connect to close) as Asterisk would see it under that load.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kalliope_tel.lab.ports import free_tcp_port
from kalliope_tel.tuning import settle_heap

ENV_BLOCK = (
    b"agi_network: yes\n"
    b"agi_network_script: pbx-name\n"
    b"agi_request: agi://127.0.0.1/pbx-name\n"
    b"agi_channel: PJSIP/101-00000001\n"
    b"agi_language: en\n"
    b"agi_type: PJSIP\n"
    b"agi_uniqueid: 1700000000.1\n"
    b"agi_callerid: 101\n"
    b"agi_context: kalliope-internal\n"
    b"agi_extension: *331\n"
    b"agi_priority: 2\n"
    b"\n"
)


@dataclass
class AgiBenchResult:
    requests: int
    concurrency: int
    throughput_rps: float
    target_rate_rps: int
    achieved_rate_rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    server_cpu_seconds: float
    server_cpu_us_per_request: float
    database: str


async def one_request(port: int) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(ENV_BLOCK)
    commands = 0
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            commands += 1
            writer.write(b"200 result=1\n")
    except ConnectionResetError:
        # Our reply to the final command met the server's close, which is
        # what happens to Asterisk too; only an early reset is an error.
        if commands < 2:
            raise
    writer.close()
    if commands != 2:  # SET VARIABLE KT_PBX_NAME, SET VARIABLE KALLIOPE_AGI_STATUS
        raise RuntimeError(f"expected 2 commands, got {commands}")
    return time.perf_counter() - started


async def closed_loop(port: int, total: int, concurrency: int) -> tuple[float, int]:
    remaining = total
    errors = 0

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            try:
                await one_request(port)
            except (OSError, RuntimeError):
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), errors


async def open_loop(port: int, rate: int, seconds: float) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    tasks: list[asyncio.Task[None]] = []

    async def timed() -> None:
        nonlocal errors
        try:
            latencies.append(await one_request(port))
        except (OSError, RuntimeError):
            errors += 1

    interval = 1.0 / rate
    count = int(rate * seconds)
    started = time.perf_counter()
    for i in range(count):
        delay = started + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed()))
    await asyncio.gather(*tasks)
    return latencies, count / (time.perf_counter() - started), errors


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(pid, {cpu})


def run(
    *,
    requests: int = 20000,
    concurrency: int = 32,
    rate: int = 500,
    seconds: float = 10.0,
    database_url: str | None = None,
) -> AgiBenchResult:
    with tempfile.TemporaryDirectory(prefix="kt-bench-") as tmp:
        db_url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        port = free_tcp_port()
        env = {**os.environ, "KALLIOPE_DATABASE_URL": db_url, "KALLIOPE_LOG_LEVEL": "warning"}
        server = subprocess.Popen(
            [sys.executable, "-m", "kalliope_tel.bench.agi_server", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            if server.stdout.readline().strip() != "ready":
                raise RuntimeError("benchmark FastAGI server did not start")
            _pin(server.pid, 0)
            _pin(0, 1)
            # The generator stands in for Asterisk, which has no GC pauses.
            settle_heap()
            asyncio.run(closed_loop(port, 500, concurrency))  # warm-up
            cpu0 = _cpu_seconds(server.pid)
            throughput, errors1 = asyncio.run(closed_loop(port, requests, concurrency))
            cpu = _cpu_seconds(server.pid) - cpu0
            latencies, achieved, errors2 = asyncio.run(open_loop(port, rate, seconds))
        finally:
            server.terminate()
            server.wait(10)
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return AgiBenchResult(
        requests=requests,
        concurrency=concurrency,
        throughput_rps=round(throughput, 1),
        target_rate_rps=rate,
        achieved_rate_rps=round(achieved, 1),
        p50_ms=round(statistics.median(ms), 3),
        p99_ms=round(ms[int(len(ms) * 0.99) - 1], 3),
        max_ms=round(ms[-1], 3),
        errors=errors1 + errors2,
        server_cpu_seconds=round(cpu, 3),
        server_cpu_us_per_request=round(cpu / requests * 1e6, 1),
        database=db_url.split(":", 1)[0],
    )


def as_dict(result: AgiBenchResult) -> dict[str, object]:
    return asdict(result)
