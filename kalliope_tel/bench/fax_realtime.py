"""How many G.711 fax receptions over RTP one core carries in real time.

Two processes on loopback, each pinned to its own core: the receiver runs N
``RtpFaxEndpoint`` receiving sessions on one ``MediaClock`` (the engine as
``serve`` runs it), the sender runs N sending sessions the same way. A run
passes when every fax is delivered (phase E OK, all pages) and no receiver
tick ran more than one frame (20 ms) late. The search raises N until a run
fails; the figure is the largest N that passed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kalliope_tel.fax.media import MediaClock, RtpFaxEndpoint, open_endpoint
from kalliope_tel.fax.session import AudioFaxSession, FaxOptions, PhaseE

FRAME_MS = 20.0


@dataclass
class RealtimeRun:
    receptions: int
    delivered: int
    pages: int
    max_late_ms: float
    late_ticks: int  # receiver ticks more than one frame late
    seconds: float
    receiver_cpu_pct: float  # of one core
    passed: bool
    outcomes: dict[str, int]


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


async def _side(
    role: str, n: int, document: Path, workdir: Path, peers: list[tuple[str, int]] | None
) -> dict[str, object]:
    from kalliope_tel.tuning import settle_heap

    clock = MediaClock()
    endpoints = []
    for k in range(n):
        if role == "rx":
            session = AudioFaxSession(calling=False, options=FaxOptions(), rx_file=workdir / f"rx-{k}.tif")
        else:
            session = AudioFaxSession(calling=True, options=FaxOptions(), tx_file=document)
        endpoint = RtpFaxEndpoint(session, clock, remote=peers[k] if peers else None, stall_after=3600)
        endpoints.append(endpoint)
    # Bind every socket, then tell the parent where they are.
    for endpoint in endpoints:
        await open_endpoint(endpoint)
    if role == "rx":
        print(json.dumps([list(e.local_address) for e in endpoints]), flush=True)
    settle_heap()
    cpu0, t0 = time.process_time(), time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(*(e.finished for e in endpoints), return_exceptions=True), 300)
    seconds = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    for endpoint in endpoints:
        endpoint.close()
    done = [r for r in results if isinstance(r, PhaseE)]
    outcomes: dict[str, int] = {}
    for r in results:
        key = r.text if isinstance(r, PhaseE) else type(r).__name__
        outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "outcomes": outcomes,
        "delivered": sum(1 for r in done if r.ok),
        "pages": sum(r.pages_rx if role == "rx" else r.pages_tx for r in done),
        "max_late_ms": round(clock.stats.max_late * 1000, 2),
        "late_ticks": clock.stats.late_ticks,
        "seconds": round(seconds, 2),
        "cpu_pct": round(100 * cpu / seconds, 1) if seconds else 0.0,
    }


def side_main(argv: list[str]) -> None:
    """Entry point of a side process: ROLE N DOCUMENT WORKDIR CORE [PEERS_JSON]."""
    role, n, document, workdir, core = argv[0], int(argv[1]), Path(argv[2]), Path(argv[3]), int(argv[4])
    peers = [(str(p[0]), int(p[1])) for p in json.loads(argv[5])] if len(argv) > 5 else None
    _pin(core)
    result = asyncio.run(_side(role, n, document, workdir, peers))
    print(json.dumps(result), flush=True)


def run_once(n: int, document: Path, workdir: Path) -> RealtimeRun:
    code = "import sys; from kalliope_tel.bench.fax_realtime import side_main; side_main(sys.argv[1:])"
    rx = subprocess.Popen(
        [sys.executable, "-c", code, "rx", str(n), str(document), str(workdir), "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert rx.stdout is not None
    addresses = rx.stdout.readline()
    tx = subprocess.run(
        [sys.executable, "-c", code, "tx", str(n), str(document), str(workdir), "1", addresses.strip()],
        capture_output=True,
        text=True,
        check=False,
    )
    rx_out, _ = rx.communicate(timeout=600)
    if rx.returncode != 0 or tx.returncode != 0:
        raise RuntimeError(f"bench side failed: {tx.stderr[-500:]}")
    got = json.loads(rx_out.strip().splitlines()[-1])
    passed = got["delivered"] == n and got["max_late_ms"] <= FRAME_MS
    return RealtimeRun(
        receptions=n,
        delivered=int(got["delivered"]),
        pages=int(got["pages"]),
        max_late_ms=float(got["max_late_ms"]),
        late_ticks=int(got["late_ticks"]),
        seconds=float(got["seconds"]),
        receiver_cpu_pct=float(got["cpu_pct"]),
        passed=passed,
        outcomes=dict(got["outcomes"]),
    )


def search(*, start: int = 200, step: int = 100, limit: int = 1000, progress=None) -> list[RealtimeRun]:  # type: ignore[no-untyped-def]
    """Runs at start, start+step, ... until one fails (or ``limit``)."""
    from kalliope_tel.bench.fax import _document

    runs: list[RealtimeRun] = []
    with tempfile.TemporaryDirectory(prefix="kt-bench-fax-rt-") as tmpdir:
        tmp = Path(tmpdir)
        document = tmp / "page.tif"
        _document(document, 1)
        n = start
        while n <= limit:
            if progress is not None:
                progress(n)
            run = run_once(n, document, tmp)
            runs.append(run)
            for old in tmp.glob("rx-*.tif"):
                old.unlink()
            if not run.passed:
                break
            n += step
    return runs


def as_dicts(runs: list[RealtimeRun]) -> list[dict[str, object]]:
    return [asdict(r) for r in runs]
