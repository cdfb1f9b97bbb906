"""How late the event loop runs callbacks: the measure of a stall.

A fax call needs a frame every 20 ms; anything that blocks the loop (a
synchronous database call, a large import, a long garbage collection) shows
up here first. The monitor sleeps ``interval`` seconds in a loop and records
how much later than asked it woke up: the maximum and the 99th percentile
over the last window, and every stall over ``warn_ms`` as a structured log
line (``loop.stall``). ``serve`` puts the figures in its node status, which
``doctor`` shows.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class LoopLagMonitor:
    def __init__(self, *, interval: float = 0.02, window: float = 60.0, warn_ms: float = 20.0) -> None:
        self.interval = interval
        self.warn_ms = warn_ms
        self._samples: deque[tuple[float, float]] = deque()
        self._window = window
        self.worst_ms = 0.0
        self.stalls = 0

    def figures(self) -> dict[str, Any]:
        lags = sorted(lag for _, lag in self._samples)
        if not lags:
            return {"max_ms": 0.0, "p99_ms": 0.0, "samples": 0, "stalls": self.stalls, "worst_ms": self.worst_ms}
        return {
            "max_ms": round(lags[-1], 1),
            "p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1),
            "samples": len(lags),
            "stalls": self.stalls,  # over warn_ms since start
            "worst_ms": round(self.worst_ms, 1),
        }

    async def run(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.interval)
            now = time.perf_counter()
            lag_ms = max(0.0, (now - asked - self.interval) * 1000)
            self._samples.append((now, lag_ms))
            while self._samples and self._samples[0][0] < now - self._window:
                self._samples.popleft()
            if lag_ms > self.worst_ms:
                self.worst_ms = lag_ms
            if lag_ms > self.warn_ms:
                self.stalls += 1
                log.warning("loop.stall", lag_ms=round(lag_ms, 1))
