"""FastAGI throughput and latency, over loopback, with the real handler stack.

Each target runs in its own server process pinned to one core (the target
is "per core"): a registered handler through the production router on a
store seeded as a small hotel (``agi_server``), or the bare-loop reference
(``agi_bare``: plain asyncio streams, one SET VARIABLE), measured in the
same run so the report gives each handler's CPU per request as a ratio to
it. The load generator runs in this process on the other core and answers
as Asterisk does: ``GET VARIABLE KALLIOPE_FROM_EXTEN`` with the calling
room, ``GET FULL VARIABLE`` (the room's call count) with 0, anything else
with ``200 result=1``; a request counts only if it ends with
``KALLIOPE_AGI_STATUS SUCCESS``.

Two phases per target: a closed loop (``concurrency`` clients back to back)
for the most requests per second and the server's CPU per request; an open
loop at a fixed rate for latency (connect to close) as Asterisk sees it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kalliope_tel.errors import KalliopeError
from kalliope_tel.lab.ports import free_tcp_port
from kalliope_tel.tuning import settle_heap

BARE = "bare-loop"
# What a handler is asked, as the dialplan asks it (agi_server seeds room 101
# checked in, 102 free).
REQUESTS = {
    "pbx-name": "pbx-name",
    "hotel-room-call": "hotel-room-call?room=102&pbx=default",
    "hotel-room-out": "hotel-room-out?room=101&pbx=default",
    "hotel-outbound-class": "hotel-outbound-class?pbx=default",
    "hotel-cleaning": "hotel-cleaning?code=1&pbx=default",
    BARE: "bare",
}
DEFAULT_HANDLERS = ["hotel-room-call", "hotel-cleaning", "hotel-outbound-class"]
CALLER = b"101"


def env_block(request: str) -> bytes:
    return (
        b"agi_network: yes\n"
        + b"agi_network_script: " + request.encode() + b"\n"
        + b"agi_request: agi://127.0.0.1/" + request.encode() + b"\n"
        b"agi_channel: PJSIP/101-00000001\n"
        b"agi_language: en\n"
        b"agi_type: PJSIP\n"
        b"agi_uniqueid: 1700000000.1\n"
        b"agi_callerid: 101\n"
        b"agi_context: kalliope-internal\n"
        b"agi_extension: 600\n"
        b"agi_priority: 2\n"
        b"\n"
    )  # fmt: skip


def _reply(command: bytes) -> bytes:
    if command.startswith(b"GET VARIABLE KALLIOPE_FROM_EXTEN"):
        return b"200 result=1 (" + CALLER + b")\n"
    if command.startswith(b"GET FULL VARIABLE"):
        return b"200 result=1 (0)\n"
    return b"200 result=1\n"


@dataclass
class AgiBenchResult:
    handler: str
    request: str
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
    commands_per_request: int = 0
    ratio_to_bare_loop: float | None = None


@dataclass
class AgiReport:
    reference: AgiBenchResult
    handlers: list[AgiBenchResult] = field(default_factory=list)


async def one_request(port: int, block: bytes) -> tuple[float, int]:
    """(seconds from connect to close, commands answered)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(block)
    commands = 0
    last = b""
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            commands += 1
            last = line
            writer.write(_reply(line))
    except ConnectionResetError:
        # Our reply to the final command met the server's close, which is
        # what happens to Asterisk too; only an early reset is an error.
        if commands < 1:
            raise
    writer.close()
    if not last.startswith(b"SET VARIABLE KALLIOPE_AGI_STATUS SUCCESS"):
        raise RuntimeError(f"the request did not end in SUCCESS: {last[:120]!r}")
    return time.perf_counter() - started, commands


async def closed_loop(port: int, block: bytes, total: int, concurrency: int) -> tuple[float, int, int]:
    remaining = total
    errors = 0
    commands = 0

    async def worker() -> None:
        nonlocal remaining, errors, commands
        while remaining > 0:
            remaining -= 1
            try:
                commands = (await one_request(port, block))[1]
            except (OSError, RuntimeError):
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), errors, commands


async def open_loop(port: int, block: bytes, rate: int, seconds: float) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    tasks: list[asyncio.Task[None]] = []

    async def timed() -> None:
        nonlocal errors
        try:
            latencies.append((await one_request(port, block))[0])
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


class UnknownHandler(KalliopeError):
    pass


def _measure(
    handler: str,
    request: str,
    *,
    requests: int,
    concurrency: int,
    rate: int,
    seconds: float,
    db_url: str,
) -> AgiBenchResult:
    port = free_tcp_port()
    module = "kalliope_tel.bench.agi_bare" if handler == BARE else "kalliope_tel.bench.agi_server"
    env = {**os.environ, "KALLIOPE_DATABASE_URL": db_url, "KALLIOPE_LOG_LEVEL": "warning"}
    server = subprocess.Popen([sys.executable, "-m", module, str(port)], env=env, stdout=subprocess.PIPE, text=True)
    block = env_block(request)
    try:
        assert server.stdout is not None
        ready = server.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError("benchmark FastAGI server did not start")
        if handler != BARE and handler not in ready[1].split(","):
            raise UnknownHandler(f"no FastAGI handler {handler!r}; registered: {ready[1].replace(',', ', ')}")
        _pin(server.pid, 0)
        _pin(0, 1)
        # The generator stands in for Asterisk, which has no GC pauses.
        settle_heap()
        asyncio.run(closed_loop(port, block, 500, concurrency))  # warm-up
        cpu0 = _cpu_seconds(server.pid)
        throughput, errors1, commands = asyncio.run(closed_loop(port, block, requests, concurrency))
        cpu = _cpu_seconds(server.pid) - cpu0
        latencies, achieved, errors2 = asyncio.run(open_loop(port, block, rate, seconds))
    finally:
        server.terminate()
        server.wait(10)
    latencies.sort()
    ms = [x * 1000 for x in latencies] or [0.0]
    return AgiBenchResult(
        handler=handler,
        request=request,
        requests=requests,
        concurrency=concurrency,
        throughput_rps=round(throughput, 1),
        target_rate_rps=rate,
        achieved_rate_rps=round(achieved, 1),
        p50_ms=round(statistics.median(ms), 3),
        p99_ms=round(ms[max(0, int(len(ms) * 0.99) - 1)], 3),
        max_ms=round(ms[-1], 3),
        errors=errors1 + errors2,
        server_cpu_seconds=round(cpu, 3),
        server_cpu_us_per_request=round(cpu / requests * 1e6, 1),
        database=db_url.split(":", 1)[0],
        commands_per_request=commands,
    )


def run(
    *,
    handlers: list[str] | None = None,
    params: str = "",
    requests: int = 10000,
    concurrency: int = 32,
    rate: int = 500,
    seconds: float = 10.0,
    database_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> AgiReport:
    """The bare loop, then each handler (default: the three hotel ones)."""
    names = handlers or DEFAULT_HANDLERS
    with tempfile.TemporaryDirectory(prefix="kt-bench-") as tmp:
        db_url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        measure = functools.partial(
            _measure, requests=requests, concurrency=concurrency, rate=rate, seconds=seconds, db_url=db_url
        )
        if progress:
            progress(BARE)
        reference = measure(BARE, REQUESTS[BARE])
        report = AgiReport(reference)
        for name in names:
            if progress:
                progress(name)
            result = measure(name, f"{name}?{params}" if params else REQUESTS.get(name, name))
            if reference.server_cpu_us_per_request:
                result.ratio_to_bare_loop = round(
                    result.server_cpu_us_per_request / reference.server_cpu_us_per_request, 2
                )
            report.handlers.append(result)
    return report


def as_dict(report: AgiReport) -> dict[str, object]:
    return {"reference": asdict(report.reference), "handlers": [asdict(h) for h in report.handlers]}
