"""``kalliope-tel lab dial``: a call from a lab phone, and what happened.

The call is an ARI originate of ``Local/<number>@kt-lab-dial``. Its ``;1``
half is the calling phone, held in a private Stasis application so we can
press digits and hang up; its ``;2`` half runs the real dialplan with the
caller id of extension ``--from``. Prompts are read off ``ChannelDialplan``
events of the ``;2`` half (Playback, Background, ...) and off FastAGI
``STREAM FILE`` commands reported as ``KALLIOPE_PROMPT`` variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.asterisk.ari.errors import AriError
from kalliope_tel.asterisk.ari.models import (
    ChannelDestroyed,
    ChannelDialplan,
    ChannelVarset,
    Dial,
    Event,
    StasisStart,
)
from kalliope_tel.asterisk.ari.runtime import AriRuntime
from kalliope_tel.dialplan_variables import LAB_FROM, LAB_ORIGIN, PROMPT

PLAYING_APPS = {
    "playback",
    "background",
    "controlplayback",
    "saydigits",
    "saynumber",
    "read",
    "sayalpha",
}
LAB_DIAL_CONTEXT = "kt-lab-dial"
# After max_duration we hang up and wait this long for the call's end.
HANGUP_GRACE = 3.0


@dataclass
class DialReport:
    caller: str
    number: str
    answered: bool = False
    dial_status: str = ""
    prompts: list[str] = field(default_factory=list)
    applications: list[str] = field(default_factory=list)
    digits_sent: str = ""
    hangup_cause: int | None = None
    hangup_cause_text: str = ""
    far_end_cause: int | None = None
    far_end_cause_text: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0
    timed_out: bool = False
    asterisk_lost: bool = False  # the ARI connection was down when we gave up

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def lab_dial(
    client: AriClient,
    caller: str,
    number: str,
    *,
    digits: str = "",
    digit_delay: float = 1.0,
    ring_timeout: int = 20,
    max_duration: float = 30.0,
    origin: str = "internal",
    variables: dict[str, str] | None = None,
) -> DialReport:
    """Place the call and follow it to its end (or ``max_duration``)."""
    app = client.apps[0]
    token = uuid.uuid4().hex[:12]
    leg1, leg2 = f"ktlab-{token}", f"ktlab-{token}-far"
    report = DialReport(caller, number)
    runtime = AriRuntime(client)
    runner = asyncio.create_task(runtime.run())
    started = time.monotonic()
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        async with runtime.listen() as events:
            await client.originate(
                f"Local/{number}@{LAB_DIAL_CONTEXT}",
                app=app,
                app_args=["lab-dial"],
                caller_id=f'"Lab {caller}" <{caller}>',
                timeout=ring_timeout,
                channel_id=leg1,
                other_channel_id=leg2,
                variables={LAB_FROM: caller, LAB_ORIGIN: origin, **(variables or {})},
            )
            deadline = started + max_duration
            while report.hangup_cause is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if report.timed_out:
                        # Hung up and still no end: Asterisk itself is gone
                        # (it died mid-call). Return what we saw, never hang.
                        report.asterisk_lost = not client.connected.is_set()
                        break
                    report.timed_out = True
                    await _hangup_quietly(client, leg1)
                    deadline = time.monotonic() + HANGUP_GRACE
                    continue
                try:
                    event = await asyncio.wait_for(events.get(), remaining)
                except TimeoutError:
                    continue
                if _follow(event, report, leg1, leg2) and digits and not report.digits_sent:
                    report.digits_sent = digits
                    asyncio.create_task(_press(client, leg1, digits, digit_delay))  # noqa: RUF006
            report.duration = round(time.monotonic() - started, 2)
            if report.asterisk_lost:
                return report
            # The far half may be destroyed just after ours; its cause says more
            # (17 busy, 34 congestion) than the near half's.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    while report.far_end_cause is None:
                        _follow(await events.get(), report, leg1, leg2)
    finally:
        await client.aclose()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await runtime.aclose()
    return report


def _follow(event: Event, report: DialReport, leg1: str, leg2: str) -> bool:
    """Update the report; True when the call has just been answered."""
    if isinstance(event, StasisStart) and event.channel.id == leg1:
        report.answered = True
        return True
    if isinstance(event, Dial) and event.peer.id == leg1 and event.dialstatus:
        report.dial_status = event.dialstatus
    elif isinstance(event, ChannelDialplan) and event.channel.id == leg2:
        report.applications.append(event.dialplan_app)
        if event.dialplan_app.lower() in PLAYING_APPS:
            report.prompts.extend(p for p in event.dialplan_app_data.split(",")[0].split("&") if p)
    elif isinstance(event, ChannelVarset) and event.channel_id == leg2:
        report.variables[event.variable] = event.value
        if event.variable == PROMPT and event.value:
            report.prompts.append(event.value)
    elif isinstance(event, ChannelDestroyed):
        if event.channel.id == leg1:
            report.hangup_cause, report.hangup_cause_text = event.cause, event.cause_txt
        elif event.channel.id == leg2:
            report.far_end_cause, report.far_end_cause_text = event.cause, event.cause_txt
    return False


async def _press(client: AriClient, channel_id: str, digits: str, delay: float) -> None:
    await asyncio.sleep(delay)
    with contextlib.suppress(AriError):  # the call ended first; the report says so
        await client.send_dtmf(channel_id, digits, between_ms=200, duration_ms=120)


async def _hangup_quietly(client: AriClient, channel_id: str) -> None:
    with contextlib.suppress(AriError, TimeoutError):
        await asyncio.wait_for(client.hangup(channel_id), HANGUP_GRACE)
