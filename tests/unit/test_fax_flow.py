"""The fax call flow's rules, without Asterisk."""

from __future__ import annotations

import pytest

from kalliope_tel.fax import flow as f
from kalliope_tel.fax.session import PhaseE

pytestmark = pytest.mark.unit
OK = PhaseE(0, "OK", 0, 2, 14400, True)
FAILED = PhaseE(48, "Disconnected after permitted retries", 0, 0, 14400, True)


def _flow(direction: f.Direction = f.Direction.RECEIVE) -> f.FaxCallFlow:
    return f.FaxCallFlow(f.FlowConfig(direction, max_seconds=600, ending_grace=5, linger=3))


def _to_transferring(flow: f.FaxCallFlow) -> None:
    assert flow.handle(f.Start(answered=False)) == [f.Answer()]
    assert flow.handle(f.Answered()) == [f.StartTimer("call", 600), f.OpenMedia(f.Direction.RECEIVE)]
    assert flow.handle(f.MediaReady("m")) == [f.Bridge("m")]
    assert flow.handle(f.Bridged()) == []
    assert flow.state is f.State.TRANSFERRING


def test_good_fax_lingers_then_finishes_when_the_far_end_hangs_up() -> None:
    flow = _flow()
    _to_transferring(flow)
    assert flow.handle(f.FaxDone(OK)) == [f.CancelTimer("call"), f.StartTimer("linger", 3)]
    commands = flow.handle(f.CallEnded(16, "Normal Clearing"))
    assert commands[-2:] == [f.Teardown(), f.Finish(True, "OK", OK)]
    assert flow.state is f.State.DONE
    assert flow.handle(f.MediaLost()) == []  # our own teardown's echo


def test_linger_timer_ends_the_call_if_the_far_end_stays() -> None:
    flow = _flow()
    _to_transferring(flow)
    flow.handle(f.FaxDone(OK))
    assert flow.handle(f.TimerFired("call")) == []  # a stale timer changes nothing
    assert flow.handle(f.TimerFired("linger"))[-1] == f.Finish(True, "OK", OK)


def test_caller_hangup_mid_fax_stops_the_session_and_keeps_spandsps_reason() -> None:
    flow = _flow()
    _to_transferring(flow)
    commands = flow.handle(f.CallEnded(16, "Normal Clearing"))
    assert f.StopSession("the far end hung up (Normal Clearing)") in commands
    assert flow.state is f.State.ENDING
    finish = flow.handle(f.FaxDone(FAILED))[-1]
    assert finish == f.Finish(False, "the far end hung up (Normal Clearing)", FAILED)


def test_session_that_never_ends_is_given_up_after_the_grace() -> None:
    flow = _flow()
    _to_transferring(flow)
    flow.handle(f.TimerFired("call"))
    assert flow.stop_reason == "no result after 600 s"
    finish = flow.handle(f.TimerFired("ending"))[-1]
    assert isinstance(finish, f.Finish) and not finish.ok and finish.result is None


def test_originated_call_enters_answered_and_unanswered_call_fails() -> None:
    flow = _flow(f.Direction.SEND)
    assert flow.handle(f.Start(answered=True))[-1] == f.OpenMedia(f.Direction.SEND)
    unanswered = _flow(f.Direction.SEND)
    assert unanswered.handle(f.CallEnded(17, "busy"))[-1] == f.Finish(False, "not answered (busy)", None)


def test_hangup_while_answering_fails_without_a_session() -> None:
    flow = _flow()
    flow.handle(f.Start(answered=False))
    commands = flow.handle(f.CallEnded(16))
    assert not any(isinstance(c, f.StopSession) for c in commands)  # no session to stop
    assert commands[-1] == f.Finish(False, "the call ended before the fax started", None)


@pytest.mark.parametrize(
    "event", [f.Answered(), f.Bridged(), f.FaxDone(OK), f.MediaReady("m")], ids=lambda e: type(e).__name__
)
def test_events_out_of_place_raise(event: f.Event) -> None:
    with pytest.raises(f.IllegalEvent):
        _flow().handle(event)
