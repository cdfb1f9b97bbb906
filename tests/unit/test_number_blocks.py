"""The overlap rule of numbers and blocks, against brute force: two
entries collide exactly when the sets of numbers they cover meet."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kalliope_tel.trunks.numbers import Blocks, block_label

# Short numbers, so that random ones collide often enough to matter.
ENTRY = st.tuples(st.text("0123", min_size=5, max_size=6), st.integers(0, 3))


def covered(number: str, digits: int) -> set[str]:
    prefix = number[: len(number) - digits]
    return {prefix + format(i, f"0{digits}d") for i in range(10**digits)} if digits else {number}


@settings(max_examples=300, deadline=None)
@given(st.lists(ENTRY, max_size=12), ENTRY)
def test_a_collision_is_an_overlap_of_the_numbers_covered(stored: list[tuple[str, int]], new: tuple[str, int]) -> None:
    blocks = Blocks()
    taken: dict[str, str] = {}
    for number, digits in stored:
        if blocks.collision(number, digits) is None:  # as the service does: only what does not collide is kept
            blocks.add(number, digits)
            taken.update(dict.fromkeys(covered(number, digits), number))
    number, digits = new
    found = blocks.collision(number, digits)
    overlapping = {taken[n] for n in covered(number, digits) if n in taken}
    assert (found is not None) == bool(overlapping)
    assert found is None or found in overlapping


def test_block_labels() -> None:
    assert block_label("0612345600", 2) == "06123456XX"
    assert block_label("0612345678", 0) == "0612345678"
