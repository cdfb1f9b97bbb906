"""Process tuning for long-running services."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Freeze the start-up heap out of the cyclic garbage collector.

    Imports (SQLAlchemy, pydantic, typer...) leave a large heap of objects
    that live forever; every full collection walked all of them, and those
    pauses were the whole tail of FastAGI latency (p99 6 ms, max 90 ms at
    500 requests/s; with the heap frozen: p99 about 2 ms, max about 6 ms).
    """
    gc.collect()
    gc.freeze()
