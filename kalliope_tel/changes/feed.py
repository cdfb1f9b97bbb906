"""A node's reader of the change feed, and the hub its live panels subscribe to.

The feed reads ``live_change`` rows after the last id it saw, whenever the
doorbell rings (PostgreSQL ``LISTEN``, or a commit in this process) and at
least every ``poll`` seconds (SQLite written by another process, a lost
notification). On PostgreSQL ids are handed out at insert time but become
visible at commit, so a smaller id can appear after a larger one: the ids
skipped over are remembered for ``GAP_GRACE`` seconds and read again.

The hub groups each read by PBX into a ``Batch`` (the changed room ids) and
gives it to every subscriber of that PBX. Subscribers render what they need
through ``Batch.once``, so 200 open panels cost one rendering per change,
not 200. A subscriber that falls behind (its queue full) is told to reload
rather than being handed a partial history.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import Engine, delete, func, select

from kalliope_tel.backoff import Backoff, Retry
from kalliope_tel.changes import record
from kalliope_tel.changes.models import Change
from kalliope_tel.db.base import utcnow

log = structlog.get_logger(__name__)
CHANNEL = "kalliope_live_change"
GAP_GRACE = 10.0
KEEP = timedelta(hours=1)
QUEUE_SIZE = 256


@dataclass
class Batch:
    pbx_id: int
    room_ids: frozenset[int]
    read_at: float  # time.monotonic() when the feed read it
    _cache: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)

    async def once(self, key: Any, make: Callable[[], Awaitable[Any]]) -> Any:
        """``make()``'s result, computed by the first subscriber that asks."""
        future = self._cache.get(key)
        if future is None:
            future = self._cache[key] = asyncio.ensure_future(make())
        return await asyncio.shield(future)


class Subscription:
    def __init__(self, hub: Hub, pbx_id: int) -> None:
        self.hub = hub
        self.pbx_id = pbx_id
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def offer(self, batch: Batch) -> None:
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.overflowed = True

    def close(self) -> None:
        self.hub.unsubscribe(self)


class Hub:
    def __init__(self) -> None:
        self._subs: dict[int, set[Subscription]] = defaultdict(set)
        self.batches = 0

    def subscribe(self, pbx_id: int) -> Subscription:
        sub = Subscription(self, pbx_id)
        self._subs[pbx_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs[sub.pbx_id].discard(sub)

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def publish(self, changed: dict[int, set[int]]) -> None:
        now = time.monotonic()
        for pbx_id, rooms in changed.items():
            subs = self._subs.get(pbx_id)
            if not subs:
                continue
            batch = Batch(pbx_id, frozenset(rooms), now)
            self.batches += 1
            for sub in list(subs):
                sub.offer(batch)


class ChangeFeed:
    def __init__(self, engine: Engine, hub: Hub, *, poll: float, listen_url: str | None = None) -> None:
        self.engine = engine
        self.hub = hub
        self.poll = poll
        self.listen_url = listen_url
        self._bell = asyncio.Event()
        self._last = 0
        self._gaps: dict[int, float] = {}  # id -> monotonic deadline

    # ------------------------------------------------------------ reading
    def _start_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.coalesce(func.max(Change.id), 0))) or 0)

    def _read(self, low: int) -> list[tuple[int, int, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Change.id, Change.pbx_id, Change.room_id).where(Change.id > low).order_by(Change.id).limit(5000)
            ).all()
        return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    def _take(self, rows: list[tuple[int, int, int]]) -> dict[int, set[int]]:
        now = time.monotonic()
        changed: dict[int, set[int]] = defaultdict(set)
        for change_id, pbx_id, room_id in rows:
            if change_id <= self._last and change_id not in self._gaps:
                continue  # seen already (read again because of an older gap)
            self._gaps.pop(change_id, None)
            if change_id > self._last:
                self._gaps.update((i, now + GAP_GRACE) for i in range(self._last + 1, change_id))
                self._last = change_id
            changed[pbx_id].add(room_id)
        self._gaps = {i: d for i, d in self._gaps.items() if d > now}
        return changed

    async def step(self) -> dict[int, set[int]]:
        low = min(self._gaps, default=self._last + 1) - 1
        rows = await asyncio.to_thread(self._read, low)
        changed = self._take(rows)
        if changed:
            self.hub.publish(changed)
        return changed

    def _cleanup(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(Change).where(Change.at < utcnow() - KEEP))

    # ------------------------------------------------------------ running
    async def run(self) -> None:
        loop = asyncio.get_running_loop()

        def bell() -> None:
            loop.call_soon_threadsafe(self._bell.set)

        remove = record.add_bell(bell)
        listener = asyncio.create_task(self._listen()) if self.listen_url else None
        try:
            self._last = max(self._last, await asyncio.to_thread(self._start_id))
            next_cleanup = 0.0
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._bell.wait(), self.poll)
                self._bell.clear()
                await self.step()
                if time.monotonic() >= next_cleanup:
                    await asyncio.to_thread(self._cleanup)
                    next_cleanup = time.monotonic() + 300
        finally:
            remove()
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    async def _listen(self) -> None:
        """Ring the bell on every NOTIFY; reconnect with backoff (the poll covers the gap)."""
        import psycopg

        retry = Retry(Backoff(first=1.0, cap=15.0))
        assert self.listen_url is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.listen_url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    retry.reset()
                    self._bell.set()  # read whatever was missed while not listening
                    async for _ in conn.notifies():
                        self._bell.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("changes.listen_lost", error=type(exc).__name__)
            await asyncio.sleep(retry.next())
