"""One wake-up attempt as a sans-IO state machine: ``handle(event) -> commands``.

Theory of operation. The engine (an ARI Stasis application) creates a flow
per attempt, sends it ``Start``, and carries out the commands it returns:
originate the call, play prompts, start and cancel timers, hang up, record a
timeline entry, finish with an outcome. What happens on the call comes back
as events. The flow never waits or touches I/O, so every path is tested
without Asterisk and the engine stays a thin adapter.

States and the events each accepts are one table (``_TRANSITIONS``); an event
a state does not list raises ``IllegalEvent``: e.g. a digit before the call
was answered is a bug in the engine, not something to guess about.

Rules (from the alarm clock specification):

* ask-answer (press 1 before the message): no 1 means no message; a hang-up,
  timeout or another digit is an unconfirmed attempt.
* ask-listen (press 9 after the message): the same, after the message.
* with neither option, answering is the confirmation.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Shared with every call flow; re-exported so engines keep writing f.StartTimer.
from kalliope_tel.callflow import CancelTimer as CancelTimer
from kalliope_tel.callflow import IllegalEvent as IllegalEvent
from kalliope_tel.callflow import StartTimer as StartTimer
from kalliope_tel.callflow import TimerFired as TimerFired
from kalliope_tel.callflow import dispatch
from kalliope_tel.wakeup.models import AttemptOutcome


class State(enum.StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    WAIT_ANSWER_DIGIT = "wait_answer_digit"  # answered, waiting for 1
    PLAYING = "playing"  # the wake-up message
    WAIT_LISTEN_DIGIT = "wait_listen_digit"  # message played, waiting for 9
    CLOSING = "closing"  # outcome known, hanging up
    DONE = "done"


@dataclass(frozen=True)
class FlowConfig:
    endpoint: str
    caller_id: str
    ring_timeout: int
    message: str
    confirm_answer: bool
    confirm_listen: bool
    digit_timeout: int
    variables: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------ events
@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Ringing:
    pass


@dataclass(frozen=True)
class Answered:
    pass


@dataclass(frozen=True)
class Digit:
    digit: str


@dataclass(frozen=True)
class PlaybackStarted:
    playback_id: str


@dataclass(frozen=True)
class PlaybackFinished:
    playback_id: str


@dataclass(frozen=True)
class CallEnded:
    """The call is gone: hang-up (either side), or never answered."""

    cause: int
    cause_text: str = ""
    dial_status: str = ""  # BUSY, NOANSWER, CONGESTION, CHANUNAVAIL when not answered


@dataclass(frozen=True)
class OriginateFailed:
    reason: str


@dataclass(frozen=True)
class ConnectionLost:
    """Asterisk (or our link to it) went away during the attempt; its fate is unknown."""


Event = (
    Start
    | Ringing
    | Answered
    | Digit
    | PlaybackStarted
    | PlaybackFinished
    | TimerFired
    | CallEnded
    | OriginateFailed
    | ConnectionLost
)


# ------------------------------------------------------------------ commands
@dataclass(frozen=True)
class Originate:
    endpoint: str
    caller_id: str
    timeout: int
    variables: dict[str, str]


@dataclass(frozen=True)
class Play:
    playback_id: str
    media: list[str]


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Record:
    """A timeline entry for the alarm."""

    kind: str
    detail: str = ""


@dataclass(frozen=True)
class Finish:
    outcome: AttemptOutcome
    cause: str = ""


Command = Originate | Play | StartTimer | CancelTimer | Hangup | Record | Finish

PRESS_1 = ["sound:vm-press", "sound:digits/1"]
PRESS_9 = ["sound:vm-press", "sound:digits/9"]
THANKS = ["sound:auth-thankyou"]
DIGIT_TIMER = "digit"
# Unanswered calls: how the dial status maps to an outcome.
DIAL_OUTCOMES = {
    "BUSY": AttemptOutcome.BUSY,
    "CONGESTION": AttemptOutcome.UNAVAILABLE,
    "CHANUNAVAIL": AttemptOutcome.UNAVAILABLE,
}


class WakeupFlow:
    def __init__(self, config: FlowConfig) -> None:
        self.config = config
        self.state = State.IDLE
        self.outcome: AttemptOutcome | None = None
        self._answered = False

    # -------------------------------------------------------------- driver
    def handle(self, event: Event) -> list[Command]:
        return dispatch(_TRANSITIONS, self, self.state, event)

    # -------------------------------------------------------------- helpers
    def _media(self) -> list[str]:
        name = self.config.message
        return [name if ":" in name else f"sound:{name}"]

    def _conclude(self, outcome: AttemptOutcome, cause: str = "") -> list[Command]:
        """Outcome known while the call is up: say so, then hang up."""
        self.outcome = outcome
        self.state = State.CLOSING
        return [CancelTimer(DIGIT_TIMER), Record("outcome", outcome.value), Hangup()]

    def _ended(self, event: CallEnded) -> list[Command]:
        """The call is gone: finish with the outcome known, or derive it."""
        detail = f"{event.cause} {event.cause_text}".strip()
        commands: list[Command] = [CancelTimer(DIGIT_TIMER), Record("hangup", detail)]
        if self.outcome is None:
            if not self._answered:
                self.outcome = DIAL_OUTCOMES.get(event.dial_status, AttemptOutcome.NO_ANSWER)
            else:
                self.outcome = AttemptOutcome.HUNG_UP
            commands.append(Record("outcome", self.outcome.value))
        self.state = State.DONE
        return [*commands, Finish(self.outcome, detail)]

    # -------------------------------------------------------------- transitions
    def _start(self, _: Start) -> list[Command]:
        self.state = State.RINGING
        c = self.config
        return [Record("originated", c.endpoint), Originate(c.endpoint, c.caller_id, c.ring_timeout, c.variables)]

    def _ringing(self, _: Ringing) -> list[Command]:
        return [Record("ringing")]

    def _answered_event(self, _: Answered) -> list[Command]:
        self._answered = True
        commands: list[Command] = [Record("answered")]
        if self.config.confirm_answer:
            self.state = State.WAIT_ANSWER_DIGIT
            return [*commands, Play("ask-1", PRESS_1), StartTimer(DIGIT_TIMER, self.config.digit_timeout)]
        if not self.config.confirm_listen:
            # No confirmation asked: answering is the confirmation.
            self.outcome = AttemptOutcome.CONFIRMED
            commands.append(Record("outcome", self.outcome.value))
        self.state = State.PLAYING
        return [*commands, Play("message", self._media())]

    def _answer_digit(self, event: Digit) -> list[Command]:
        commands: list[Command] = [Record("digit", event.digit)]
        if event.digit != "1":
            return [*commands, *self._conclude(AttemptOutcome.WRONG_DIGIT, event.digit)]
        if not self.config.confirm_listen:
            self.outcome = AttemptOutcome.CONFIRMED
            commands.append(Record("outcome", self.outcome.value))
        self.state = State.PLAYING
        return [*commands, CancelTimer(DIGIT_TIMER), Play("message", self._media())]

    def _listen_digit(self, event: Digit) -> list[Command]:
        commands: list[Command] = [Record("digit", event.digit)]
        if event.digit != "9":
            return [*commands, *self._conclude(AttemptOutcome.WRONG_DIGIT, event.digit)]
        self.outcome = AttemptOutcome.CONFIRMED
        self.state = State.CLOSING
        return [*commands, CancelTimer(DIGIT_TIMER), Record("outcome", self.outcome.value), Play("thanks", THANKS)]

    def _digit_ignored(self, event: Digit) -> list[Command]:
        # Digits pressed while the message plays (or while closing) change nothing.
        return [Record("digit", f"{event.digit} (ignored)")]

    def _playback_started(self, event: PlaybackStarted) -> list[Command]:
        return [Record("playback_started", event.playback_id)]

    def _playback_finished(self, event: PlaybackFinished) -> list[Command]:
        commands: list[Command] = [Record("playback_finished", event.playback_id)]
        if self.state is State.PLAYING and event.playback_id == "message":
            if self.config.confirm_listen:
                self.state = State.WAIT_LISTEN_DIGIT
                return [*commands, Play("ask-9", PRESS_9), StartTimer(DIGIT_TIMER, self.config.digit_timeout)]
            self.state = State.CLOSING
            return [*commands, Hangup()]
        if self.state is State.CLOSING and event.playback_id == "thanks":
            return [*commands, Hangup()]
        return commands

    def _digit_timeout(self, event: TimerFired) -> list[Command]:
        if event.name != DIGIT_TIMER:
            return []
        return [Record("timeout", "no digit"), *self._conclude(AttemptOutcome.NO_DIGIT)]

    def _originate_failed(self, event: OriginateFailed) -> list[Command]:
        self.outcome = AttemptOutcome.UNAVAILABLE
        self.state = State.DONE
        return [Record("originate_failed", event.reason), Finish(self.outcome, event.reason)]

    def _late_timer(self, _: TimerFired) -> list[Command]:
        return []

    def _lost(self, _: ConnectionLost) -> list[Command]:
        # A confirmation already heard stands; anything else is unknown.
        if self.outcome is not AttemptOutcome.CONFIRMED:
            self.outcome = AttemptOutcome.LOST
        self.state = State.DONE
        return [CancelTimer(DIGIT_TIMER), Record("lost", "Asterisk connection lost"), Finish(self.outcome, "lost")]


# Each handler takes the event type its key names; the table guarantees it.
Handler = Callable[[WakeupFlow, Any], list[Command]]
_ANSWERED_STATES = (State.WAIT_ANSWER_DIGIT, State.PLAYING, State.WAIT_LISTEN_DIGIT, State.CLOSING)
_TRANSITIONS: dict[tuple[State, type], Handler] = {
    (State.IDLE, Start): WakeupFlow._start,
    (State.RINGING, Ringing): WakeupFlow._ringing,
    (State.RINGING, Answered): WakeupFlow._answered_event,
    (State.RINGING, CallEnded): WakeupFlow._ended,
    (State.RINGING, OriginateFailed): WakeupFlow._originate_failed,
    (State.WAIT_ANSWER_DIGIT, Digit): WakeupFlow._answer_digit,
    (State.WAIT_LISTEN_DIGIT, Digit): WakeupFlow._listen_digit,
    (State.PLAYING, Digit): WakeupFlow._digit_ignored,
    (State.CLOSING, Digit): WakeupFlow._digit_ignored,
    (State.WAIT_ANSWER_DIGIT, TimerFired): WakeupFlow._digit_timeout,
    (State.WAIT_LISTEN_DIGIT, TimerFired): WakeupFlow._digit_timeout,
    (State.PLAYING, TimerFired): WakeupFlow._late_timer,
    (State.CLOSING, TimerFired): WakeupFlow._late_timer,
    (State.DONE, TimerFired): WakeupFlow._late_timer,
    **{(s, PlaybackStarted): WakeupFlow._playback_started for s in _ANSWERED_STATES},
    **{(s, PlaybackFinished): WakeupFlow._playback_finished for s in _ANSWERED_STATES},
    **{(s, CallEnded): WakeupFlow._ended for s in _ANSWERED_STATES},
    **{(s, ConnectionLost): WakeupFlow._lost for s in (State.RINGING, *_ANSWERED_STATES)},
}
