"""Per-key ordered, cross-key concurrent delivery of events.

Events of one channel must reach its call flow in the order Asterisk sent
them (DTMF 1 before DTMF 9, StasisEnd after both), while a slow handler on
one channel must never delay another channel's call. A key with items has
one worker task; it ends as soon as its key has nothing left, so memory
follows live calls only.

Why no queue with an idle timeout: ``wait_for(queue.get(), idle)`` made a
task and a timer per event, and under 1,000 wake-up calls that was the
largest share of the engine's own CPU. A worker per burst costs one task
when a key goes from idle to busy and nothing per event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


class OrderedDispatcher(Generic[T]):
    def __init__(self, handler: Callable[[T], Awaitable[None]]) -> None:
        self._handler = handler
        self._pending: dict[str, deque[T]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, key: str, item: T) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            pending.append(item)  # its worker is running and will get to it
            return
        self._pending[key] = deque((item,))
        self._workers[key] = asyncio.create_task(self._work(key), name=f"ari-dispatch-{key}")

    async def _work(self, key: str) -> None:
        pending = self._pending[key]
        try:
            while pending:
                item = pending.popleft()
                try:
                    await self._handler(item)
                except Exception:
                    log.exception("ari.handler_failed", key=key)
        finally:
            # No await between the emptiness check above and this removal:
            # submit() cannot add an item to a deque nobody reads.
            del self._pending[key]
            del self._workers[key]

    @property
    def active_keys(self) -> int:
        return len(self._workers)

    async def drain(self) -> None:
        """Wait until every submitted item has been handled."""
        while self._workers:
            await asyncio.wait(list(self._workers.values()))

    async def aclose(self) -> None:
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
