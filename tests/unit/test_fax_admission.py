"""The node's own fax admission: a count, and the media clock's load."""

from __future__ import annotations

import pytest

from kalliope_tel.fax.admission import MediaAdmission
from kalliope_tel.fax.media import MediaClock


class _Ticking:
    def on_tick(self) -> None: ...

    def fail(self, exc: Exception) -> None: ...


async def _clock(active: int, load: float) -> MediaClock:
    clock = MediaClock()
    for _ in range(active):
        clock.add(_Ticking())
    clock.load = load
    clock.call_load = clock.peak_call_load = load / active if active else 0.0
    return clock


async def test_the_count_cap_refuses_the_call_over_it() -> None:
    clock = await _clock(0, 0.0)
    admission = MediaAdmission(max_calls=3)
    assert admission.refusal(2, clock) is None
    assert admission.refusal(3, clock) == "fax capacity reached (fax_max_calls 3)"


@pytest.mark.parametrize(
    ("active", "load", "refused"),
    [
        (0, 0.0, False),  # the first call: nothing to weigh
        (9, 0.54, False),  # 60 % with one more of the average cost
        (9, 0.63, True),  # 70 % with one more: over 0.65
        (10, 0.66, True),  # already over
    ],
)
async def test_the_load_limit_weighs_one_more_call_of_the_average_cost(active: int, load: float, refused: bool) -> None:
    clock = await _clock(active, load)
    reason = MediaAdmission(max_load=0.65).refusal(active, clock)
    assert (reason is not None) == refused
    if refused:
        assert reason is not None and "fax media engine busy" in reason and "fax_max_media_load 65%" in reason


async def test_calls_taken_but_not_yet_ticking_are_weighed() -> None:
    """A burst is decided before any of its calls ticks: 300 taken at 0.2 %
    each is 60 %, whatever the clock's lagging average says."""
    clock = await _clock(0, 0.0)
    clock.call_load = clock.peak_call_load = 0.002
    admission = MediaAdmission(max_load=0.65)
    assert admission.refusal(300, clock) is None
    reason = admission.refusal(325, clock)
    assert reason == "fax media engine busy (65% of a core with 325 calls; fax_max_media_load 65%)"


async def test_calls_are_weighed_at_the_peak_cost_seen() -> None:
    """Calls still negotiating cost a third of what they will once pages
    flow: the peak per-call cost measured earlier weighs them, not today's
    cheap average (which let 800 calls onto a node carrying 400)."""
    clock = await _clock(0, 0.0)
    clock.call_load, clock.peak_call_load = 0.0006, 0.002
    assert MediaAdmission(max_load=0.65).refusal(400, clock) is not None
    clock.peak_call_load = 0.0
    assert MediaAdmission(max_load=0.65).refusal(400, clock) is None


async def test_both_limits_off_take_every_call() -> None:
    clock = await _clock(50, 3.0)
    assert MediaAdmission().refusal(10_000, clock) is None


async def test_the_load_is_forgotten_when_the_last_call_ends() -> None:
    clock = MediaClock()
    endpoint = _Ticking()
    clock.add(endpoint)
    clock.load, clock.call_load, clock.peak_call_load = 0.9, 0.01, 0.02
    clock.remove(endpoint)
    assert clock.load == 0.0 and clock.active == 0
    # What one call costs on this machine is kept for the next burst.
    assert (clock.call_load, clock.peak_call_load) == (0.01, 0.02)


async def test_the_clock_measures_the_share_of_a_turn_its_endpoints_take() -> None:
    """Endpoints busy 5 ms of each 20 ms turn: the load heads for 25 %."""
    import asyncio
    import time

    class Busy(_Ticking):
        def on_tick(self) -> None:
            time.sleep(0.005)

    clock = MediaClock()
    clock.add(Busy())
    await asyncio.sleep(1.5)
    assert 0.12 < clock.load < 0.9, clock.load
    assert clock.stats.peak_load >= clock.load
    assert clock.call_load == 0.0  # too few calls to tell one's cost from the turn's own


async def test_the_clock_measures_what_one_call_costs_and_its_peak() -> None:
    """Ten endpoints busy 0.5 ms each of a 20 ms turn: 2.5 % each; then
    cheaper ones: the average follows them, the peak stays."""
    import asyncio
    import time

    cost = [0.0005]

    class Busy(_Ticking):
        def on_tick(self) -> None:
            time.sleep(cost[0])

    clock = MediaClock()
    for _ in range(10):
        clock.add(Busy())
    await asyncio.sleep(1.5)
    assert 0.012 < clock.call_load < 0.09, clock.call_load
    heavy = clock.peak_call_load
    assert heavy >= clock.call_load
    cost[0] = 0.0
    await asyncio.sleep(1.5)
    assert clock.call_load < heavy / 2
    assert clock.peak_call_load > heavy * 0.99
