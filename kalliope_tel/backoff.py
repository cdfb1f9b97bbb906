"""One backoff for every retry: doubling from ``first`` up to ``cap``, with
optional jitter. Owed work (fax deliveries, invitations) keeps its count of
tries in its row and asks ``after(tries)``; a reconnecting loop keeps a
``Retry`` and asks ``next()``, then ``reset()`` once it works again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    first: float  # seconds before the second try
    cap: float  # never longer than this
    jitter: float = 0.0  # +- this share, so nodes retrying together spread out

    def delay(self, tries: int) -> float:
        """Seconds to wait after ``tries`` failed tries (1 for the first failure)."""
        base = min(float(self.first * 2 ** max(tries - 1, 0)), self.cap)
        if self.jitter:
            base *= random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - spreading, not crypto
        return base

    def after(self, tries: int) -> timedelta:
        return timedelta(seconds=self.delay(tries))


@dataclass
class Retry:
    """A loop's failures in a row, and how long to wait after the latest."""

    backoff: Backoff
    failures: int = field(default=0)

    def next(self) -> float:
        self.failures += 1
        return self.backoff.delay(self.failures)

    def reset(self) -> None:
        self.failures = 0
