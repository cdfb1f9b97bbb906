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


async def test_both_limits_off_take_every_call() -> None:
    clock = await _clock(50, 3.0)
    assert MediaAdmission().refusal(10_000, clock) is None


async def test_the_load_is_forgotten_when_the_last_call_ends() -> None:
    clock = MediaClock()
    endpoint = _Ticking()
    clock.add(endpoint)
    clock.load = 0.9
    clock.remove(endpoint)
    assert clock.load == 0.0 and clock.active == 0


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
