"""Fax calls through a real ``serve``: every call frees its spandsp state, and
calls over the fax cap are refused before they are answered while the calls
in progress carry on. Figures are read from the node's status row, the same
one ``doctor`` shows."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from kalliope_tel.asterisk.ari.models import ChannelDestroyed, StasisStart
from kalliope_tel.asterisk.ari.runtime import AriRuntime
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db.engine import transaction
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.nodes import read_nodes
from tests.helpers import ari_runtime
from tests.integration.test_serve import start_serve

pytestmark = [pytest.mark.integration, pytest.mark.realtime, pytest.mark.asterisk, pytest.mark.timeout(300)]


class Caller:
    """Calls into Stasis(kalliope,fax,receive) on the lab and follows each call."""

    def __init__(self, runtime: AriRuntime) -> None:
        self.runtime = runtime
        self.answered: set[str] = set()
        self.ended: dict[str, int] = {}

    def follow(self, event: Any) -> None:
        if isinstance(event, StasisStart):
            self.answered.add(event.channel.id)
        elif isinstance(event, ChannelDestroyed):
            self.ended[event.channel.id] = event.cause

    async def place(self, count: int) -> list[str]:
        ids = [f"kt-faxcall-{uuid.uuid4().hex[:10]}" for _ in range(count)]
        for cid in ids:
            await self.runtime.client.originate(
                "Local/s@kt-lab-fax-serve", app=self.runtime.client.apps[0], app_args=["caller"], channel_id=cid
            )
        return ids


async def _pump(queue: asyncio.Queue[Any], caller: Caller, until: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"calls not done: answered {len(caller.answered)}, ended {len(caller.ended)}"
        try:
            caller.follow(await asyncio.wait_for(queue.get(), remaining))
        except TimeoutError:
            continue


async def _subscribed(url: str, node: str) -> None:
    """Until the node says its ARI link is up (Asterisk keeps an app listed
    after its websocket closed, so 'ari show apps' proves nothing)."""
    await _status_until(url, node, lambda s: s.get("links") == {"default": True}, timeout=30)


def _status(url: str, node: str) -> dict[str, Any]:
    container = Container(Settings(database_url=url))
    try:
        with transaction(container.sessions) as s:
            rows = [n for n in read_nodes(s) if n["node"] == node]
    finally:
        container.close()
    return rows[0] if rows else {}


async def _status_until(url: str, node: str, check: Any, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = await asyncio.to_thread(_status, url, node)
        if status and check(status):
            return status
        assert time.monotonic() < deadline, f"node status never matched: {status}"
        await asyncio.sleep(0.5)


async def test_100_fax_calls_through_serve_free_every_spandsp_session(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    node = f"fax-free-{uuid.uuid4().hex[:4]}"
    proc = start_serve(lab_state, fresh_db_url, KALLIOPE_DATA_DIR=str(tmp_path), KALLIOPE_NODE_NAME=node)
    try:
        await _subscribed(fresh_db_url, node)
        async with ari_runtime(lab_state) as runtime, runtime.listen() as queue:
            caller = Caller(runtime)
            for _ in range(10):  # ten at a time: serve answers, opens media, the caller hangs up
                ids = await caller.place(10)
                await _pump(queue, caller, lambda ids=ids: all(i in caller.answered for i in ids), 30)
                await asyncio.sleep(1.0)
                for cid in ids:
                    await runtime.client.hangup(cid)
                await _pump(queue, caller, lambda ids=ids: all(i in caller.ended for i in ids), 30)
        # A heartbeat written after the last call (every 5 s).
        status = await _status_until(
            fresh_db_url, node, lambda s: s.get("fax_sessions_created", 0) >= 100 and s.get("fax_calls") == 0
        )
    finally:
        output = proc.finish(30)
    assert len(caller.answered) == 100
    assert status["fax_sessions_created"] >= 100, status  # one spandsp session per call...
    assert status["fax_live_sessions"] == 0, status  # ...and every one freed
    assert status["fax_refused"] == 0
    assert output.count('"event": "fax.finished"') == 100, output[-2000:]


async def test_calls_over_the_fax_cap_are_refused_before_answer(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    node = f"fax-cap-{uuid.uuid4().hex[:4]}"
    proc = start_serve(
        lab_state, fresh_db_url, KALLIOPE_DATA_DIR=str(tmp_path), KALLIOPE_NODE_NAME=node, KALLIOPE_FAX_MAX_CALLS="5"
    )
    try:
        await _subscribed(fresh_db_url, node)
        async with ari_runtime(lab_state) as runtime, runtime.listen() as queue:
            caller = Caller(runtime)
            ids = await caller.place(8)
            # Five are answered; three end without ever being answered.
            await _pump(queue, caller, lambda: all(i in caller.answered or i in caller.ended for i in ids), 30)
            await asyncio.sleep(1.0)  # no late answer for the refused ones
            refused = [i for i in ids if i in caller.ended and i not in caller.answered]
            assert len(caller.answered) == 5 and len(refused) == 3, (caller.answered, caller.ended)
            # The five in progress are still up: none was cut by the refusals.
            assert not set(caller.answered) & set(caller.ended)
            for cid in caller.answered:
                await runtime.client.hangup(cid)
            await _pump(queue, caller, lambda: all(i in caller.ended for i in ids), 30)
        status = await _status_until(
            fresh_db_url, node, lambda s: s.get("fax_sessions_created", 0) >= 5 and s.get("fax_calls") == 0
        )
    finally:
        output = proc.finish(30)
    assert status["fax_refused"] == 3 and status["fax_live_sessions"] == 0, status
    assert {caller.ended[i] for i in refused} == {34}  # congestion: try again later
    assert output.count('"event": "fax.refused"') == 3


async def test_calls_are_refused_while_the_media_engine_is_over_its_load(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, tmp_path: Path
) -> None:
    """No count cap, and a media load limit so low that one call in progress
    is over it: the calls that come next are refused before answer with the
    engine's reason, while the call in progress stays up."""
    node = f"fax-load-{uuid.uuid4().hex[:4]}"
    proc = start_serve(
        lab_state,
        fresh_db_url,
        KALLIOPE_DATA_DIR=str(tmp_path),
        KALLIOPE_NODE_NAME=node,
        KALLIOPE_FAX_MAX_CALLS="0",
        KALLIOPE_FAX_MAX_MEDIA_LOAD="0.000001",
    )
    try:
        await _subscribed(fresh_db_url, node)
        async with ari_runtime(lab_state) as runtime, runtime.listen() as queue:
            caller = Caller(runtime)
            (first,) = await caller.place(1)
            await _pump(queue, caller, lambda: first in caller.answered, 30)
            await asyncio.sleep(2.0)  # its media runs: the clock's load is measured
            later = await caller.place(3)
            await _pump(queue, caller, lambda: all(i in caller.ended for i in later), 30)
            assert not set(later) & caller.answered  # refused before answer
            assert first not in caller.ended  # the call in progress was not cut
            await runtime.client.hangup(first)
            await _pump(queue, caller, lambda: first in caller.ended, 30)
        # A heartbeat written after the last call (every 5 s).
        status = await _status_until(
            fresh_db_url, node, lambda s: s.get("fax_sessions_created", 0) >= 1 and s.get("fax_calls") == 0
        )
    finally:
        output = proc.finish(30)
    assert status["fax_refused"] == 3, status
    assert {caller.ended[i] for i in later} == {34}  # congestion: try again later
    assert output.count("fax media engine busy") == 3, output[-2000:]
