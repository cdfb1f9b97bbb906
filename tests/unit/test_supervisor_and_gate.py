"""The supervisor restarts what crashes and stops on what is fatal; the
config gate refuses what is not an identifier and flattens free text."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from kalliope_tel.asterisk import confgate
from kalliope_tel.looplag import LoopLagMonitor
from kalliope_tel.supervisor import Supervisor

pytestmark = pytest.mark.unit


async def test_a_crashing_task_is_restarted_with_backoff_and_counted() -> None:
    runs: list[int] = []
    healthy = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise RuntimeError(f"crash {len(runs)}")
        healthy.set()
        await asyncio.Event().wait()

    sup = Supervisor(min_backoff=0.01, max_backoff=0.02)
    sup.add("flaky", flaky)
    await asyncio.wait_for(healthy.wait(), 10)  # a bound, not a figure: the suite's other workers load the cores
    status = sup.status()["flaky"]
    assert status == {"state": "running", "restarts": 2, "last_error": "RuntimeError: crash 2"}
    await sup.stop()
    assert sup.status()["flaky"]["state"] == "stopped"


async def test_a_store_locked_past_its_wait_is_a_warning_and_a_retry_not_a_crash() -> None:
    """SQLite held by another process past busy_timeout (a long CLI import):
    the task waits and runs again, logged without a traceback."""
    runs: list[int] = []
    healthy = asyncio.Event()

    async def writer() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise OperationalError("UPDATE node_status ...", {}, sqlite3.OperationalError("database is locked"))
        healthy.set()
        await asyncio.Event().wait()

    sup = Supervisor(min_backoff=0.01, max_backoff=0.02)
    with capture_logs() as logs:
        sup.add("heartbeat", writer)
        await asyncio.wait_for(healthy.wait(), 2)
        await sup.stop()
    events = [e["event"] for e in logs]
    assert "supervisor.task_waiting_for_store" in events and "supervisor.task_crashed" not in events, logs
    assert not any(e.get("exc_info") for e in logs)


async def test_a_fatal_error_stops_everything_and_is_reported() -> None:
    class WrongPassword(Exception):
        pass

    async def bad_login() -> None:
        raise WrongPassword("401")

    sup = Supervisor(fatal=(WrongPassword,), min_backoff=0.01)
    sup.add("ari", bad_login)
    error = await asyncio.wait_for(sup.wait_fatal(), 2)
    assert isinstance(error, WrongPassword) and sup.status()["ari"]["state"] == "stopped"
    await sup.stop()


async def test_stopping_a_task_that_loses_its_cancel_ends_it_and_does_not_restart_it() -> None:
    # Python 3.11's wait_for returns its inner result when a cancel lands in
    # the same turn; a loop around it goes on. A named stop (serve stops its
    # jobs first) used to wait for such a task forever (a CI run hung 240 s).
    lost, runs = [], []

    async def forgetful() -> None:
        runs.append(1)
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not lost:
                    lost.append(1)
                    continue  # the first cancel is lost
                raise

    async def returns_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return  # swallowed entirely: must not be taken for a crash and restarted

    sup = Supervisor(min_backoff=0.01)
    sup.add("forgetful", forgetful)
    sup.add("quiet", returns_on_cancel)
    await asyncio.sleep(0.01)
    await asyncio.wait_for(sup.stop(["forgetful", "quiet"]), 5)
    assert lost == [1] and runs == [1]
    assert sup.status()["quiet"] == {"state": "stopped", "restarts": 0, "last_error": ""}
    assert all(t.task is not None and t.task.done() for t in sup.tasks.values())


async def test_a_cancel_of_stop_itself_is_not_swallowed() -> None:
    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.shield(asyncio.sleep(0.5))

    sup = Supervisor()
    sup.add("slow", slow_to_stop)
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(sup.stop())
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await sup.stop()


async def test_loop_lag_monitor_sees_a_blocking_call() -> None:
    import time

    monitor = LoopLagMonitor(interval=0.01, warn_ms=20)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.05)
    time.sleep(0.08)  # blocks the loop, as a synchronous call would
    await asyncio.sleep(0.05)
    task.cancel()
    figures = monitor.figures()
    assert figures["max_ms"] >= 60 and figures["stalls"] >= 1


@pytest.mark.parametrize("bad", ["101\n", "101 ", "", "1", "\uff11\uff10\uff11", "101;", "1" * 9])
def test_extensions_need_a_full_ascii_match(bad: str) -> None:
    with pytest.raises(confgate.UnsafeValue):
        confgate.extension(bad)


@pytest.mark.parametrize("bad", ["a\nb", "ctx]", "-x", "a b", "a;b", "a,b", "é"])
def test_identifiers_refuse_what_asterisk_treats_specially(bad: str) -> None:
    with pytest.raises(confgate.UnsafeValue):
        confgate.identifier(bad)


def test_slugs_have_no_dash() -> None:
    assert confgate.slug("hotel_a1") == "hotel_a1"
    with pytest.raises(confgate.UnsafeValue):
        confgate.slug("hotel-a")


@given(st.text())
def test_free_text_is_one_harmless_line(text: str) -> None:
    for clean in (confgate.comment(text), confgate.callerid_label(text)):
        assert clean == " ".join(clean.split())  # one line, no control characters
        assert ";" not in clean and "\\" not in clean
        assert len(clean.splitlines()) <= 1
    label = confgate.callerid_label(text)
    assert not any(ch in label for ch in '"<>[]$,|')
