"""How many G.711 fax receptions over RTP one core carries in real time, and
what happens when more are offered.

Two processes on loopback, each pinned to its own core. The caller side
places N calls, spread evenly over ``ramp`` seconds as real traffic is,
each with a set-up datagram to the receiver's signalling socket; the
receiver (the engine as ``serve`` runs it: ``RtpFaxEndpoint`` sessions on one
``MediaClock``) admits each through ``MediaAdmission``, as the fax
application does, and answers with its media port or "busy". A run passes
when every admitted fax is delivered (phase E OK, all pages) and no
receiver turn ran more than one frame (20 ms) late.

``search`` raises N, with admission off, until a run fails: the largest N
that passed is the capacity. ``overload`` then offers twice that with
admission on: the calls taken must all deliver, the rest be refused.

With ``ramp`` 0 every call starts in the same instant and the sessions run
in lock step: all of them reach a page boundary (spandsp encoding or
writing a page, a few ms each) in the same turn, and that turn takes
hundreds of ms. That is the worst case, not traffic; it is kept to show
the jitter buffer's holds carry the calls through such a stall.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kalliope_tel.fax.admission import MediaAdmission
from kalliope_tel.fax.media import MediaClock, RtpFaxEndpoint, open_endpoint
from kalliope_tel.fax.session import AudioFaxSession, FaxOptions, PhaseE

FRAME_MS = 20.0
LINGER = 1.0  # seconds an endpoint keeps sending after its fax ended, as a call's teardown takes
# The far end silent this long mid-fax ends the call, as the fax application
# hangs up a call whose media stalled (spandsp alone may wait for ever in
# some T.30 states: a run at 400 calls once hung there).
STALL_SECONDS = 10.0
Address = tuple[str, int]


@dataclass
class RealtimeRun:
    offered: int
    ramp_seconds: float
    max_media_load: float  # admission's limit; 0: admission off
    admitted: int
    refused: int
    delivered: int
    pages: int
    max_late_ms: float
    late_ticks: int  # receiver turns more than one frame late
    peak_load_pct: float  # the receiver clock's load average at its highest
    seconds: float
    receiver_cpu_pct: float  # of one core, over the whole run
    receiver_kernel_pct: float  # of that CPU time, in the kernel (the sockets)
    passed: bool
    outcomes: dict[str, int] = field(default_factory=dict)
    jitter: dict[str, int] = field(default_factory=dict)


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


def _summary(endpoints: list[RtpFaxEndpoint], results: list[object], clock: MediaClock) -> dict[str, object]:
    outcomes: dict[str, int] = {}
    for r in results:
        key = r.text if isinstance(r, PhaseE) else type(r).__name__
        outcomes[key] = outcomes.get(key, 0) + 1
    jitter: dict[str, int] = {}
    for endpoint in endpoints:
        for key, value in asdict(endpoint.jitter.stats).items():
            jitter[key] = jitter.get(key, 0) + value
    return {
        "outcomes": outcomes,
        "jitter": jitter,
        "max_late_ms": round(clock.stats.max_late * 1000, 2),
        "late_ticks": clock.stats.late_ticks,
        "peak_load_pct": round(clock.stats.peak_load * 100, 1),
    }


class MediaStalled(Exception):
    """The far end's audio stopped mid-fax for ``STALL_SECONDS``."""


def _endpoint(session: AudioFaxSession, clock: MediaClock, remote: Address | None) -> RtpFaxEndpoint:
    endpoint = RtpFaxEndpoint(session, clock, remote=remote, stall_after=STALL_SECONDS)
    endpoint.on_stall = lambda: endpoint.fail(MediaStalled())
    return endpoint


async def _until_done(endpoint: RtpFaxEndpoint) -> object:
    try:
        result: object = await endpoint.finished
    except Exception as exc:  # a session that broke: counted by its kind
        result = exc
    await asyncio.sleep(LINGER)
    endpoint.close()
    return result


class _Signalling(asyncio.DatagramProtocol):
    def __init__(self, on_datagram) -> None:  # type: ignore[no-untyped-def]
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)


async def _receiver(offered: int, workdir: Path, admission: MediaAdmission) -> dict[str, object]:
    """The engine's side: admit each call as it comes, receive the admitted."""
    from kalliope_tel.tuning import settle_heap

    loop = asyncio.get_running_loop()
    clock = MediaClock()
    endpoints: list[RtpFaxEndpoint] = []
    waits: list[asyncio.Task[object]] = []
    in_progress: set[RtpFaxEndpoint] = set()
    opening: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references
    decided = 0
    refused = 0
    all_decided = loop.create_future()
    signalling = _Signalling(None)

    async def admit(k: int, caller: Address) -> None:
        session = AudioFaxSession(calling=False, options=FaxOptions(), rx_file=workdir / f"rx-{k}.tif")
        endpoint = _endpoint(session, clock, None)
        await open_endpoint(endpoint)
        endpoints.append(endpoint)
        in_progress.add(endpoint)
        endpoint.finished.add_done_callback(lambda _: in_progress.discard(endpoint))
        waits.append(asyncio.create_task(_until_done(endpoint)))
        _answer(caller, f"OK {k} {endpoint.local_address[1]}")

    def _answer(caller: Address, text: str) -> None:
        nonlocal decided
        assert signalling.transport is not None
        signalling.transport.sendto(text.encode(), caller)
        decided += 1
        if decided == offered and not all_decided.done():
            all_decided.set_result(None)

    def on_setup(data: bytes, caller: Address) -> None:
        nonlocal refused
        k = int(data.split()[1])
        # Calls being opened count: a burst is decided before any of them ticks.
        if admission.refusal(len(in_progress) + len(opening), clock) is not None:
            refused += 1
            _answer(caller, f"BUSY {k}")
        else:
            opening.add(task := loop.create_task(admit(k, caller)))
            task.add_done_callback(opening.discard)

    signalling.on_datagram = on_setup
    await loop.create_datagram_endpoint(lambda: signalling, local_addr=("127.0.0.1", 0))
    assert signalling.transport is not None
    print(json.dumps(list(signalling.transport.get_extra_info("sockname")[:2])), flush=True)
    settle_heap()
    usage0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.wait_for(all_decided, 600)
    results = list(await asyncio.wait_for(asyncio.gather(*waits), 600))
    seconds = time.monotonic() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    user, system = usage.ru_utime - usage0.ru_utime, usage.ru_stime - usage0.ru_stime
    signalling.transport.close()
    done = [r for r in results if isinstance(r, PhaseE)]
    return {
        **_summary(endpoints, results, clock),
        "admitted": len(endpoints),
        "refused": refused,
        "delivered": sum(1 for r in done if r.ok),
        "pages": sum(r.pages_rx for r in done),
        "seconds": round(seconds, 2),
        "cpu_pct": round(100 * (user + system) / seconds, 1) if seconds else 0.0,
        "kernel_pct": round(100 * system / (user + system), 1) if user + system else 0.0,
    }


async def _caller(offered: int, document: Path, receiver: Address, ramp: float) -> dict[str, object]:
    """The far ends: place the calls over the ramp, send to those taken."""
    loop = asyncio.get_running_loop()
    clock = MediaClock()
    answers: dict[int, asyncio.Future[str]] = {k: loop.create_future() for k in range(offered)}

    def on_answer(data: bytes, _: Address) -> None:
        words = data.decode().split()
        future = answers[int(words[1])]
        if not future.done():
            future.set_result(data.decode())

    signalling = _Signalling(on_answer)
    await loop.create_datagram_endpoint(lambda: signalling, local_addr=("127.0.0.1", 0))
    assert signalling.transport is not None
    endpoints: list[RtpFaxEndpoint] = []
    waits: list[asyncio.Task[object]] = []

    async def place(k: int) -> None:
        await asyncio.sleep(ramp * k / offered)
        assert signalling.transport is not None
        signalling.transport.sendto(f"SETUP {k}".encode(), receiver)
        answer = (await asyncio.wait_for(answers[k], 30)).split()
        if answer[0] != "OK":
            return
        session = AudioFaxSession(calling=True, options=FaxOptions(), tx_file=document)
        endpoint = _endpoint(session, clock, (receiver[0], int(answer[2])))
        await open_endpoint(endpoint)
        endpoints.append(endpoint)
        waits.append(asyncio.create_task(_until_done(endpoint)))

    await asyncio.gather(*(place(k) for k in range(offered)))
    results = list(await asyncio.wait_for(asyncio.gather(*waits), 600))
    signalling.transport.close()
    return _summary(endpoints, results, clock)


def side_main(argv: list[str]) -> None:
    """A side process: ``rx N WORKDIR CORE MAX_CALLS MAX_LOAD`` or
    ``tx N DOCUMENT CORE HOST:PORT RAMP``; prints its figures as JSON."""
    role, offered, core = argv[0], int(argv[1]), int(argv[3])
    _pin(core)
    if role == "rx":
        admission = MediaAdmission(int(argv[4]), float(argv[5]))
        result = asyncio.run(_receiver(offered, Path(argv[2]), admission))
    else:
        host, port = argv[4].rsplit(":", 1)
        result = asyncio.run(_caller(offered, Path(argv[2]), (host, int(port)), float(argv[5])))
    print(json.dumps(result), flush=True)


def run_once(
    offered: int, document: Path, workdir: Path, *, ramp: float = 5.0, max_calls: int = 0, max_load: float = 0.0
) -> RealtimeRun:
    code = "import sys; from kalliope_tel.bench.fax_realtime import side_main; side_main(sys.argv[1:])"
    rx = subprocess.Popen(
        [sys.executable, "-c", code, "rx", str(offered), str(workdir), "0", str(max_calls), str(max_load)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert rx.stdout is not None
    host, port = json.loads(rx.stdout.readline())
    tx = subprocess.run(
        [sys.executable, "-c", code, "tx", str(offered), str(document), "1", f"{host}:{port}", str(ramp)],
        capture_output=True,
        text=True,
        check=False,
    )
    if tx.returncode != 0:  # the receiver would wait for calls that never come
        rx.kill()
        rx.communicate()
        raise RuntimeError(f"bench caller side failed: {tx.stderr[-800:]}")
    rx_out, rx_err = rx.communicate(timeout=900)
    if rx.returncode != 0:
        raise RuntimeError(f"bench receiver side failed: {rx_err[-800:]}")
    got = json.loads(rx_out.strip().splitlines()[-1])
    admitted, delivered = int(got["admitted"]), int(got["delivered"])
    return RealtimeRun(
        offered=offered,
        ramp_seconds=ramp,
        max_media_load=max_load,
        admitted=admitted,
        refused=int(got["refused"]),
        delivered=delivered,
        pages=int(got["pages"]),
        max_late_ms=float(got["max_late_ms"]),
        late_ticks=int(got["late_ticks"]),
        peak_load_pct=float(got["peak_load_pct"]),
        seconds=float(got["seconds"]),
        receiver_cpu_pct=float(got["cpu_pct"]),
        receiver_kernel_pct=float(got["kernel_pct"]),
        passed=delivered == admitted and float(got["max_late_ms"]) <= FRAME_MS,
        outcomes=dict(got["outcomes"]),
        jitter=dict(got["jitter"]),
    )


def _with_document(pages: int, work) -> list[RealtimeRun]:  # type: ignore[no-untyped-def]
    from kalliope_tel.bench.fax import _document

    with tempfile.TemporaryDirectory(prefix="kt-bench-fax-rt-") as tmpdir:
        tmp = Path(tmpdir)
        document = tmp / "doc.tif"
        _document(document, pages)
        runs: list[RealtimeRun] = work(document, tmp)
        return runs


def search(  # type: ignore[no-untyped-def]
    *, start: int = 200, step: int = 100, limit: int = 1000, ramp: float = 5.0, pages: int = 2, progress=None
) -> list[RealtimeRun]:
    """Runs at start, start+step, ... with admission off, until one fails
    (or ``limit``)."""

    def work(document: Path, tmp: Path) -> list[RealtimeRun]:
        runs: list[RealtimeRun] = []
        n = start
        while n <= limit:
            if progress is not None:
                progress(f"{n} receptions")
            run = run_once(n, document, tmp, ramp=ramp)
            runs.append(run)
            for old in tmp.glob("rx-*.tif"):
                old.unlink()
            if not (run.passed and run.refused == 0):
                break
            n += step
        return runs

    return _with_document(pages, work)


def overload(offered: int, *, max_load: float, max_calls: int = 0, ramp: float = 5.0, pages: int = 2) -> RealtimeRun:
    """``offered`` calls with admission on (the media load limit, and the
    count when ``max_calls``): the calls taken must all deliver, on time."""
    return _with_document(
        pages,
        lambda document, tmp: [run_once(offered, document, tmp, ramp=ramp, max_calls=max_calls, max_load=max_load)],
    )[0]


def as_dicts(runs: list[RealtimeRun]) -> list[dict[str, object]]:
    return [asdict(r) for r in runs]
