"""The wake-up call flow, without Asterisk: events in, commands out."""

from __future__ import annotations

import pytest

from kalliope_tel.wakeup.flow import (
    PRESS_1,
    PRESS_9,
    Answered,
    CallEnded,
    Digit,
    Finish,
    FlowConfig,
    Hangup,
    IllegalEvent,
    Originate,
    Play,
    PlaybackFinished,
    Ringing,
    Start,
    State,
    TimerFired,
    WakeupFlow,
)
from kalliope_tel.wakeup.models import AttemptOutcome as O

pytestmark = pytest.mark.unit


def flow(answer: bool = False, listen: bool = False) -> WakeupFlow:
    f = WakeupFlow(FlowConfig("Local/101@w", '"Wake-up" <900>', 20, "hello-world", answer, listen, 5))
    commands = f.handle(Start())
    assert Originate("Local/101@w", '"Wake-up" <900>', 20, {}) in commands
    return f


def finish(commands: list[object]) -> Finish | None:
    return next((c for c in commands if isinstance(c, Finish)), None)


def plays(commands: list[object]) -> list[list[str]]:
    return [c.media for c in commands if isinstance(c, Play)]


def test_press_1_listen_press_9_is_confirmed() -> None:
    f = flow(answer=True, listen=True)
    f.handle(Ringing())
    assert plays(f.handle(Answered())) == [PRESS_1]
    assert plays(f.handle(Digit("1"))) == [["sound:hello-world"]]
    assert f.state is State.PLAYING
    assert plays(f.handle(PlaybackFinished("message"))) == [PRESS_9]
    f.handle(Digit("9"))
    assert f.outcome is O.CONFIRMED
    assert Hangup() in f.handle(PlaybackFinished("thanks"))
    assert finish(f.handle(CallEnded(16, "Normal Clearing"))) == Finish(O.CONFIRMED, "16 Normal Clearing")


def test_answering_confirms_without_options() -> None:
    f = flow()
    commands = f.handle(Answered())
    assert f.outcome is O.CONFIRMED and plays(commands) == [["sound:hello-world"]]
    assert Hangup() in f.handle(PlaybackFinished("message"))
    assert finish(f.handle(CallEnded(16))).outcome is O.CONFIRMED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("events", "outcome"),
    [
        ([Answered(), TimerFired("digit"), CallEnded(16)], O.NO_DIGIT),
        ([Answered(), Digit("2"), CallEnded(16)], O.WRONG_DIGIT),
        ([Answered(), CallEnded(16)], O.HUNG_UP),
        ([Answered(), Digit("1"), PlaybackFinished("message"), CallEnded(16)], O.HUNG_UP),  # 1 then hang-up
        ([Answered(), Digit("1"), PlaybackFinished("message"), TimerFired("digit"), CallEnded(16)], O.NO_DIGIT),
        ([Answered(), Digit("1"), PlaybackFinished("message"), Digit("1"), CallEnded(16)], O.WRONG_DIGIT),
        ([CallEnded(19, "User alerting, no answer")], O.NO_ANSWER),
        ([CallEnded(0, "Unknown", "BUSY")], O.BUSY),
        ([CallEnded(0, "", "CONGESTION")], O.UNAVAILABLE),
    ],
)
def test_unconfirmed_outcomes(events: list[object], outcome: O) -> None:
    f = flow(answer=True, listen=True)
    commands: list[object] = []
    for event in events:
        commands = f.handle(event)  # type: ignore[arg-type]
    done = finish(commands)
    assert done is not None and done.outcome is outcome
    assert f.state is State.DONE


def test_no_message_without_the_1() -> None:
    f = flow(answer=True)
    f.handle(Answered())
    commands = f.handle(TimerFired("digit"))
    assert plays(commands) == [] and Hangup() in commands


def test_digits_during_message_are_ignored() -> None:
    f = flow(listen=True)
    f.handle(Answered())
    assert plays(f.handle(Digit("9"))) == [] and f.state is State.PLAYING


@pytest.mark.parametrize(
    ("setup", "event"),
    [
        ([], Digit("1")),  # a digit before answer
        ([], PlaybackFinished("message")),
        ([Answered()], Answered()),
        ([Answered(), TimerFired("digit"), CallEnded(16)], Digit("1")),  # after the end
    ],
)
def test_illegal_events_raise(setup: list[object], event: object) -> None:
    f = flow(answer=True)
    for e in setup:
        f.handle(e)  # type: ignore[arg-type]
    with pytest.raises(IllegalEvent):
        f.handle(event)  # type: ignore[arg-type]
