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

    dispatcher: OrderedDispatcher[tuple[str, int]] = OrderedDispatcher(handler)
    for n in range(3):
        dispatcher.submit("slow", ("slow", n))
        dispatcher.submit("fast", ("fast", n))
    await dispatcher.drain()
    assert [n for k, n, _ in handled if k == "slow"] == [0, 1, 2]
    assert [n for k, n, _ in handled if k == "fast"] == [0, 1, 2]
    assert max(t for k, _, t in handled if k == "fast") < 0.1  # not behind the slow channel
    assert dispatcher.active_keys == 0  # a channel with nothing queued keeps no worker
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


async def test_items_of_one_key_in_order_and_a_slow_key_delays_no_other() -> None:
    seen: list[tuple[str, int]] = []
    release_slow = asyncio.Event()

    async def handle(item: tuple[str, int]) -> None:
        key, n = item
        if key == "slow" and n == 0:
            await release_slow.wait()
        await asyncio.sleep(0)  # handlers await: items must not overtake each other
        seen.append(item)

    d: OrderedDispatcher[tuple[str, int]] = OrderedDispatcher(handle)
    for n in range(3):
        d.submit("slow", ("slow", n))
    for n in range(50):
        d.submit("fast", ("fast", n))
    async with asyncio.timeout(2):
        while len(seen) < 50:
            await asyncio.sleep(0.001)
    assert seen == [("fast", n) for n in range(50)]  # all done while "slow" waits
    assert d.active_keys == 1
    d.submit("slow", ("slow", 3))  # arrives while its worker is still busy
    release_slow.set()
    await d.drain()
    assert [n for k, n in seen if k == "slow"] == [0, 1, 2, 3]
    assert d.active_keys == 0  # idle keys leave nothing behind


async def test_a_key_that_comes_back_after_going_idle_is_served_again() -> None:
    seen: list[int] = []

    async def handle(n: int) -> None:
        seen.append(n)

    d: OrderedDispatcher[int] = OrderedDispatcher(handle)
    d.submit("k", 1)
    await d.drain()
    assert d.active_keys == 0
    d.submit("k", 2)
    d.submit("k", 3)
    await d.drain()
    assert seen == [1, 2, 3]


async def test_aclose_cancels_handlers_in_progress() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handle(n: int) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    d: OrderedDispatcher[int] = OrderedDispatcher(handle)
    d.submit("k", 1)
    d.submit("k", 2)
    await asyncio.wait_for(started.wait(), 1)
    await d.aclose()
    assert cancelled.is_set() and d.active_keys == 0
