"""One fax call on Asterisk as a sans-IO state machine: ``handle(event) -> commands``.

Theory of operation. The call is in our Stasis application; the engine
(``ari_apps/fax.py``) creates a flow per call, feeds it what happens (the
call entered, the answer went through, the media channel exists, the bridge
is up, the fax session reached phase E, the caller hung up, a command
failed, a timer fired) and carries out what it returns: answer, open the
media (a UDP socket with a fax session, and an ``externalMedia`` channel
pointed at it), bridge the two, stop the session early, tear everything
down, finish with a result.

The transitions are one table (``_TRANSITIONS``); an event a state does
not list raises ``IllegalEvent``. Late events that are expected after we
tear down (the channels we hang up report their own destruction) are listed
explicitly as no-ops, so a surprise is still a surprise.

Rules:

* A fax session exists from ``OpenMedia`` on; once it does, the call ends
  only through its phase E (asked for with ``StopSession`` when the caller
  hangs up, the media channel vanishes or the call takes too long), so the
  result always carries spandsp's reason and page counts.
* If phase E does not come within ``ending_grace`` seconds of the stop, the
  call finishes as failed anyway: nothing waits forever.
* After phase E the call stays up (silence) until the far end hangs up or
  ``linger`` seconds pass: hanging up at once cut Asterisk's own phase E
  short (its ReceiveFax/SendFax reported FAXERROR=HANGUP on a good fax).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Shared with every call flow; re-exported so engines keep writing f.StartTimer.
from kalliope_tel.callflow import CancelTimer as CancelTimer
from kalliope_tel.callflow import IllegalEvent as IllegalEvent
from kalliope_tel.callflow import StartTimer as StartTimer
from kalliope_tel.callflow import TimerFired as TimerFired
from kalliope_tel.callflow import dispatch
from kalliope_tel.fax.session import PhaseE


class State(enum.StrEnum):
    IDLE = "idle"
    ANSWERING = "answering"
    OPENING = "opening"  # socket + session + externalMedia channel
    BRIDGING = "bridging"
    TRANSFERRING = "transferring"
    ENDING = "ending"  # session told to stop; waiting for its phase E
    LINGERING = "lingering"  # phase E reached; giving the far end time to finish and hang up
    DONE = "done"


class Direction(enum.StrEnum):
    RECEIVE = "receive"
    SEND = "send"


@dataclass(frozen=True)
class FlowConfig:
    direction: Direction
    max_seconds: float = 900.0  # a whole call, answer to phase E
    ending_grace: float = 10.0
    linger: float = 3.0


# ------------------------------------------------------------------ events
@dataclass(frozen=True)
class Start:
    answered: bool  # originated calls enter Stasis answered; dialplan calls may not be


@dataclass(frozen=True)
class Answered:
    pass


@dataclass(frozen=True)
class MediaReady:
    channel_id: str


@dataclass(frozen=True)
class Bridged:
    pass


@dataclass(frozen=True)
class FaxDone:
    result: PhaseE


@dataclass(frozen=True)
class CallEnded:
    cause: int = 0
    cause_text: str = ""


@dataclass(frozen=True)
class MediaLost:
    reason: str = "the media channel went away"


@dataclass(frozen=True)
class Failed:
    reason: str


Event = Start | Answered | MediaReady | Bridged | FaxDone | CallEnded | MediaLost | Failed | TimerFired


# ------------------------------------------------------------------ commands
@dataclass(frozen=True)
class Answer:
    pass


@dataclass(frozen=True)
class OpenMedia:
    direction: Direction


@dataclass(frozen=True)
class Bridge:
    media_channel_id: str


@dataclass(frozen=True)
class StopSession:
    reason: str


@dataclass(frozen=True)
class Teardown:
    """Hang up the call and the media channel, delete the bridge, close the socket."""


@dataclass(frozen=True)
class Finish:
    ok: bool
    reason: str
    result: PhaseE | None


Command = Answer | OpenMedia | Bridge | StopSession | StartTimer | CancelTimer | Teardown | Finish

CALL_TIMER, ENDING_TIMER, LINGER_TIMER = "call", "ending", "linger"


class FaxCallFlow:
    def __init__(self, config: FlowConfig) -> None:
        self.config = config
        self.state = State.IDLE
        self.stop_reason = ""
        self.outcome: Finish | None = None  # known at phase E, reported when the call is over
        self.finished: Finish | None = None

    def handle(self, event: Event) -> list[Command]:
        return dispatch(_TRANSITIONS, self, self.state, event)

    # -------------------------------------------------------------- steps
    def _start(self, event: Start) -> list[Command]:
        if not event.answered:
            self.state = State.ANSWERING
            return [Answer()]
        return self._open()

    def _answered(self, event: Answered) -> list[Command]:
        return self._open()

    def _open(self) -> list[Command]:
        self.state = State.OPENING
        return [StartTimer(CALL_TIMER, self.config.max_seconds), OpenMedia(self.config.direction)]

    def _media_ready(self, event: MediaReady) -> list[Command]:
        self.state = State.BRIDGING
        return [Bridge(event.channel_id)]

    def _bridged(self, event: Bridged) -> list[Command]:
        self.state = State.TRANSFERRING
        return []

    def _fax_done(self, event: FaxDone) -> list[Command]:
        reason = event.result.text if event.result.ok or not self.stop_reason else self.stop_reason
        self.outcome = Finish(event.result.ok, reason, event.result)
        if self.state is State.ENDING:  # the call is gone or going already
            return self._finish(self.outcome.ok, self.outcome.reason, self.outcome.result)
        self.state = State.LINGERING
        return [CancelTimer(CALL_TIMER), StartTimer(LINGER_TIMER, self.config.linger)]

    def _linger_over(self, event: Event) -> list[Command]:
        if isinstance(event, TimerFired) and event.name != LINGER_TIMER:
            return []
        assert self.outcome is not None
        return self._finish(self.outcome.ok, self.outcome.reason, self.outcome.result)

    def _stop(self, reason: str) -> list[Command]:
        self.state = State.ENDING
        self.stop_reason = reason
        return [CancelTimer(CALL_TIMER), StopSession(reason), StartTimer(ENDING_TIMER, self.config.ending_grace)]

    def _not_answered(self, event: CallEnded) -> list[Command]:
        return self._finish(False, f"not answered ({event.cause_text or f'cause {event.cause}'})", None)

    def _call_ended_before_media(self, event: CallEnded) -> list[Command]:
        return self._finish(False, "the call ended before the fax started", None)

    def _call_ended(self, event: CallEnded) -> list[Command]:
        return self._stop(f"the far end hung up ({event.cause_text or event.cause})")

    def _media_lost(self, event: MediaLost) -> list[Command]:
        return self._stop(event.reason)

    def _failed_early(self, event: Failed) -> list[Command]:
        return self._finish(False, event.reason, None)

    def _failed(self, event: Failed) -> list[Command]:
        return self._stop(event.reason)

    def _timer(self, event: TimerFired) -> list[Command]:
        if event.name == CALL_TIMER:
            return self._stop(f"no result after {self.config.max_seconds:.0f} s")
        return []

    def _ending_timer(self, event: TimerFired) -> list[Command]:
        if event.name == ENDING_TIMER:
            return self._finish(False, f"{self.stop_reason}; the fax session did not end by itself", None)
        return []

    def _finish(self, ok: bool, reason: str, result: PhaseE | None) -> list[Command]:
        self.state = State.DONE
        self.finished = Finish(ok, reason, result)
        timers = [CancelTimer(name) for name in (CALL_TIMER, ENDING_TIMER, LINGER_TIMER)]
        return [*timers, Teardown(), self.finished]

    def _ignore(self, event: Event) -> list[Command]:
        return []


Handler = Callable[[FaxCallFlow, Any], list[Command]]
S = State
_TRANSITIONS: dict[tuple[State, type], Handler] = {
    (S.IDLE, Start): FaxCallFlow._start,
    (S.IDLE, CallEnded): FaxCallFlow._not_answered,  # an outgoing call that never entered Stasis
    (S.IDLE, Failed): FaxCallFlow._failed_early,
    (S.ANSWERING, Answered): FaxCallFlow._answered,
    (S.ANSWERING, CallEnded): FaxCallFlow._call_ended_before_media,
    (S.ANSWERING, Failed): FaxCallFlow._failed_early,
    (S.OPENING, MediaReady): FaxCallFlow._media_ready,
    (S.OPENING, CallEnded): FaxCallFlow._call_ended,
    (S.OPENING, Failed): FaxCallFlow._failed,
    (S.OPENING, TimerFired): FaxCallFlow._timer,
    (S.OPENING, FaxDone): FaxCallFlow._fax_done,
    (S.BRIDGING, Bridged): FaxCallFlow._bridged,
    (S.BRIDGING, CallEnded): FaxCallFlow._call_ended,
    (S.BRIDGING, MediaLost): FaxCallFlow._media_lost,
    (S.BRIDGING, Failed): FaxCallFlow._failed,
    (S.BRIDGING, TimerFired): FaxCallFlow._timer,
    (S.BRIDGING, FaxDone): FaxCallFlow._fax_done,
    (S.TRANSFERRING, FaxDone): FaxCallFlow._fax_done,
    (S.TRANSFERRING, CallEnded): FaxCallFlow._call_ended,
    (S.TRANSFERRING, MediaLost): FaxCallFlow._media_lost,
    (S.TRANSFERRING, Failed): FaxCallFlow._failed,
    (S.TRANSFERRING, TimerFired): FaxCallFlow._timer,
    (S.ENDING, FaxDone): FaxCallFlow._fax_done,
    (S.ENDING, TimerFired): FaxCallFlow._ending_timer,
    (S.ENDING, CallEnded): FaxCallFlow._ignore,
    (S.ENDING, MediaLost): FaxCallFlow._ignore,
    (S.ENDING, Failed): FaxCallFlow._ignore,
    (S.LINGERING, CallEnded): FaxCallFlow._linger_over,
    (S.LINGERING, MediaLost): FaxCallFlow._linger_over,
    (S.LINGERING, Failed): FaxCallFlow._linger_over,
    (S.LINGERING, TimerFired): FaxCallFlow._linger_over,
    # After teardown, the channels we hung up report their end.
    (S.DONE, CallEnded): FaxCallFlow._ignore,
    (S.DONE, MediaLost): FaxCallFlow._ignore,
    (S.DONE, Failed): FaxCallFlow._ignore,
    (S.DONE, TimerFired): FaxCallFlow._ignore,
}
