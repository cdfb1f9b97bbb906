"""What every sans-IO call flow shares: the table driver, the error for an
event a state does not accept, and the timer event and commands the engines
carry out the same way for every flow (``loop.call_later`` feeding
``TimerFired`` back)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

C = TypeVar("C")


class IllegalEvent(Exception):
    def __init__(self, state: enum.Enum, event: object) -> None:
        super().__init__(f"event {type(event).__name__} is not allowed in state {state.value}")
        self.state, self.event = state, event


@dataclass(frozen=True)
class TimerFired:
    name: str


@dataclass(frozen=True)
class StartTimer:
    name: str
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    name: str


def dispatch(
    table: Mapping[tuple[Any, type], Callable[[Any, Any], list[C]]], flow: Any, state: enum.Enum, event: object
) -> list[C]:
    """Run the transition for (``state``, type of ``event``), or raise ``IllegalEvent``."""
    handler = table.get((state, type(event)))
    if handler is None:
        raise IllegalEvent(state, event)
    return handler(flow, event)
