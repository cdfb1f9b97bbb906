"""Wake-up throughput against a real lab Asterisk.

1,000 rooms (by default) get an alarm due at the same instant; their lab
phones answer at once and, with no confirmation asked, answering confirms.
The production engine and scheduler run in this process with a cap on
simultaneous calls. Figures:

* time to finish: from the due instant until every alarm is confirmed;
* lateness of first attempts behind what the cap allows: each attempt's start
  minus its start in an ideal schedule with the same cap and the same
  measured call durations (a FIFO queue of ``cap`` lines); p50 and p99;
* this process's CPU seconds per alarm, and its split: the scheduler's own
  work (claims and watchdog transactions, by thread CPU time) and the rest
  (the engine: ARI REST and events, call flows, attempt writes).
"""

from __future__ import annotations

import asyncio
import heapq
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from kalliope_tel.db.base import utcnow


@dataclass
class WakeupBenchResult:
    alarms: int
    cap: int
    confirmed: int
    seconds_to_finish: float
    calls_per_second: float
    mean_call_seconds: float
    lateness_p50_ms: float
    lateness_p99_ms: float
    max_concurrent_seen: int
    cpu_seconds: float
    cpu_ms_per_alarm: float
    # Split: the scheduler's own work (claims, watchdog: thread CPU time of
    # its transactions) and the rest of the process (the engine: ARI REST and
    # events, call flows, attempt writes, timeline).
    scheduler_cpu_ms_per_alarm: float
    engine_cpu_ms_per_alarm: float
    database: str


def ideal_starts(durations: list[float], cap: int, t0: float) -> list[float]:
    """Start times of jobs in FIFO order on ``cap`` lines, all ready at ``t0``."""
    free = [t0] * cap
    heapq.heapify(free)
    starts = []
    for d in durations:
        start = heapq.heappop(free)
        starts.append(start)
        heapq.heappush(free, start + d)
    return starts


def run(
    *,
    alarms: int = 1000,
    cap: int = 50,
    lab_root: Path,
    database_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WakeupBenchResult:
    return asyncio.run(_run(alarms, cap, lab_root, database_url, progress))


async def _run(
    alarms: int, cap: int, lab_root: Path, database_url: str | None, progress: Callable[[int, int], None] | None
) -> WakeupBenchResult:
    from kalliope_tel.ari_apps.wakeup import APP_NAME, WakeupApplication
    from kalliope_tel.asterisk.apply import write_files
    from kalliope_tel.asterisk.ari.client import AriClient
    from kalliope_tel.asterisk.ari.runtime import AriRuntime
    from kalliope_tel.config import Settings
    from kalliope_tel.container import Container
    from kalliope_tel.db import migrate
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.dialplan.generator import LAB_DEVICE, render
    from kalliope_tel.hotel import services as hotel
    from kalliope_tel.lab.instance import LabInstance
    from kalliope_tel.tenancy.services import get_pbx
    from kalliope_tel.tuning import settle_heap
    from kalliope_tel.wakeup import services as wakeup
    from kalliope_tel.wakeup.models import Alarm, AlarmAttempt, AlarmState
    from kalliope_tel.wakeup.scheduler import WakeupScheduler

    tmp = tempfile.TemporaryDirectory(prefix="kt-bench-wakeup-")
    url = database_url or f"sqlite:///{tmp.name}/bench.sqlite3"
    lab = LabInstance(lab_root, f"bench-wakeup-{uuid.uuid4().hex[:6]}")
    container = Container(Settings(database_url=url))
    try:
        state = await asyncio.to_thread(lab.start)
        migrate.upgrade(container.engine)
        rooms = [str(10000 + i) for i in range(alarms)]
        with transaction(container.sessions) as s:
            pbx = get_pbx(s)
            hotel.ensure_default_classes(s, pbx)
            hotel.create_template(s, pbx, "std")
            for room in rooms:
                hotel.create_room(s, pbx, room, "", "std", new_accounts=1)
            wakeup.update_settings(s, pbx, message="beep", attempts=1, ring_timeout=20, max_concurrent=cap)
            files = render(s, pbx, LAB_DEVICE).files
        write_files(lab.dir / "etc", files)
        lab.cli("dialplan reload")
        lab.cli("module reload res_pjsip.so")

        client = AriClient(state.ari_url, state.ari_username, state.ari_password, apps=["kt-bench-wakeup"])
        runtime = AriRuntime(client)
        app = WakeupApplication(runtime, container)
        runtime.register(APP_NAME, app)
        runner = asyncio.create_task(runtime.run())
        await asyncio.wait_for(client.connected.wait(), 10)

        # Written an hour ahead (writing 1,000 alarms can take longer than any
        # fixed lead on a busy machine: 'alarm ... is in the past'), then all
        # moved to one instant just ahead, in one statement.
        with transaction(container.sessions) as s:
            pbx = get_pbx(s)
            for room in rooms:
                wakeup.set_alarm(s, pbx, room, utcnow() + timedelta(hours=1))
        due = utcnow() + timedelta(seconds=1)
        with transaction(container.sessions) as s:
            s.execute(update(Alarm).values(due_at=due, next_attempt_at=due))
        settle_heap()
        scheduler = WakeupScheduler(container, app, "bench", tick=0.1)
        app.on_line_free = scheduler.poke
        cpu0 = time.process_time()
        sched = asyncio.create_task(scheduler.run(client.connected))
        while True:
            with container.sessions() as s:
                done = s.query(Alarm).filter(Alarm.state.in_((AlarmState.CONFIRMED, AlarmState.NOT_ANSWERED))).count()
            if progress is not None:
                progress(done, alarms)
            if done >= alarms:
                break
            await asyncio.sleep(0.25)
        cpu = time.process_time() - cpu0
        sched.cancel()
        runner.cancel()
        await asyncio.gather(sched, runner, return_exceptions=True)
        await client.aclose()
        await runtime.aclose()

        with container.sessions() as s:
            rows = s.execute(
                select(AlarmAttempt.started_at, AlarmAttempt.ended_at).order_by(AlarmAttempt.started_at)
            ).all()
            confirmed = s.query(Alarm).filter(Alarm.state == AlarmState.CONFIRMED).count()
        t0 = due.timestamp()
        starts = [r.started_at.timestamp() for r in rows]
        durations = [(r.ended_at - r.started_at).total_seconds() for r in rows]
        ideal = ideal_starts(durations, cap, t0)
        lateness = sorted(max(0.0, a - b) * 1000 for a, b in zip(starts, ideal, strict=True))
        finish = max(r.ended_at.timestamp() for r in rows) - t0
        return WakeupBenchResult(
            alarms=alarms,
            cap=cap,
            confirmed=confirmed,
            seconds_to_finish=round(finish, 2),
            calls_per_second=round(alarms / finish, 1),
            mean_call_seconds=round(statistics.mean(durations), 2),
            lateness_p50_ms=round(statistics.median(lateness), 1),
            lateness_p99_ms=round(lateness[int(len(lateness) * 0.99) - 1], 1),
            max_concurrent_seen=max_overlap([(r.started_at, r.ended_at) for r in rows]),
            cpu_seconds=round(cpu, 2),
            cpu_ms_per_alarm=round(cpu / alarms * 1000, 2),
            scheduler_cpu_ms_per_alarm=round(scheduler.cpu_seconds / alarms * 1000, 2),
            engine_cpu_ms_per_alarm=round((cpu - scheduler.cpu_seconds) / alarms * 1000, 2),
            database=url.split(":", 1)[0],
        )
    finally:
        container.close()
        await asyncio.to_thread(lab.purge)
        tmp.cleanup()


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """Most attempts in progress at one instant, from the attempt rows
    themselves (sampling every 0.25 s could miss a peak)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def as_dict(result: WakeupBenchResult) -> dict[str, object]:
    return asdict(result)
