"""Per-key ordered, cross-key concurrent delivery of events.

Events of one channel must reach its call flow in the order Asterisk sent
them (DTMF 1 before DTMF 9, StasisEnd after both), while a slow handler on
one channel must never delay another channel's call. Each key gets a queue
and a worker task; idle workers exit so memory follows live calls only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


class OrderedDispatcher(Generic[T]):
    def __init__(self, handler: Callable[[T], Awaitable[None]], *, idle_seconds: float = 5.0) -> None:
        self._handler = handler
        self._idle = idle_seconds
        self._queues: dict[str, asyncio.Queue[T]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, key: str, item: T) -> None:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._workers[key] = asyncio.create_task(self._work(key, queue), name=f"ari-dispatch-{key}")
        queue.put_nowait(item)

    async def _work(self, key: str, queue: asyncio.Queue[T]) -> None:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), self._idle)
            except TimeoutError:
                # No await between this check and the removal: submit() cannot
                # slip an item into a queue nobody reads.
                if queue.empty():
                    del self._queues[key]
                    del self._workers[key]
                    return
                continue
            try:
                await self._handler(item)
            except Exception:
                log.exception("ari.handler_failed", key=key)
            finally:
                queue.task_done()

    @property
    def active_keys(self) -> int:
        return len(self._queues)

    async def drain(self) -> None:
        """Wait until every queued item has been handled."""
        for queue in list(self._queues.values()):
            await queue.join()

    async def aclose(self) -> None:
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        self._queues.clear()
        self._workers.clear()
