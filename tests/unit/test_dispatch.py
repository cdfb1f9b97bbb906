"""Per-channel order with cross-channel concurrency."""

from __future__ import annotations

import asyncio

import pytest

from kalliope_tel.asterisk.ari.dispatch import OrderedDispatcher

pytestmark = pytest.mark.unit


async def test_slow_channel_keeps_order_and_does_not_block_others() -> None:
    handled: list[tuple[str, int, float]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def handler(item: tuple[str, int]) -> None:
        key, n = item
        if key == "slow":
            await asyncio.sleep(0.2)
        handled.append((key, n, loop.time() - start))

    dispatcher: OrderedDispatcher[tuple[str, int]] = OrderedDispatcher(handler, idle_seconds=0.1)
    for n in range(3):
        dispatcher.submit("slow", ("slow", n))
        dispatcher.submit("fast", ("fast", n))
    await dispatcher.drain()
    assert [n for k, n, _ in handled if k == "slow"] == [0, 1, 2]
    assert [n for k, n, _ in handled if k == "fast"] == [0, 1, 2]
    assert max(t for k, _, t in handled if k == "fast") < 0.1  # not behind the slow channel
    await asyncio.sleep(0.3)
    assert dispatcher.active_keys == 0  # idle workers exit
    await dispatcher.aclose()


async def test_handler_error_does_not_stop_the_channel() -> None:
    seen: list[int] = []

    async def handler(n: int) -> None:
        if n == 1:
            raise RuntimeError("boom")
        seen.append(n)

    dispatcher: OrderedDispatcher[int] = OrderedDispatcher(handler)
    for n in range(3):
        dispatcher.submit("c", n)
    await dispatcher.drain()
    assert seen == [0, 2]
    await dispatcher.aclose()
