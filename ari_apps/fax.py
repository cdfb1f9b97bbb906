"""Stasis application that sends and receives faxes through ``externalMedia``.

Thin by design: ARI events become ``kalliope_tel.fax.flow`` events, and the
flow's commands are carried out here with the ARI client and the media
engine (``kalliope_tel.fax.media``): a UDP socket running an audio fax
session, an ``externalMedia`` channel sending the call's audio to it, and a
mixing bridge joining that channel to the call.

Entering: ``Stasis(<ari app>,fax,receive)`` in the dialplan receives a fax on
the call; ``Stasis(<ari app>,fax,receive,<pbx>,<instance id>)`` receives it
for a fax instance: the service (``InboundService``) admits the call within
the limits before it is answered, gives the instance's options, and takes
the pages when the call ends. ``FaxApplication.send`` originates a call that
enters as ``fax,send``. Each call's events are handled one at a time by its own
worker, in the order they happen; commands that lead to events (answer,
open media, bridge) queue those events for the same worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from kalliope_tel.asterisk.ari.client import over_http
from kalliope_tel.asterisk.ari.errors import AriError
from kalliope_tel.asterisk.ari.models import (
    ChannelDestroyed,
    ChannelHangupRequest,
    Dial,
    Event,
    StasisEnd,
    StasisStart,
    type_names,
)
from kalliope_tel.fax import flow as f
from kalliope_tel.fax.admission import MediaAdmission
from kalliope_tel.fax.media import MediaClock, RtpFaxEndpoint, open_endpoint
from kalliope_tel.fax.session import AudioFaxSession, FaxEvent, FaxOptions, PhaseB, PhaseE
from kalliope_tel.files import private_dir

if TYPE_CHECKING:
    from kalliope_tel.asterisk.ari.runtime import AriRuntime
    from kalliope_tel.fax.inbound import Admission
    from kalliope_tel.fax.jobs import AttemptResult, SendClaim
    from kalliope_tel.fax.service import FaxService

log = structlog.get_logger(__name__)
APP_NAME = "fax"
STALLED = "no audio from Asterisk any more (one-way media)"


@dataclass(frozen=True)
class InboundCall:
    """A call received for a fax instance, as the service records it."""

    pbx: str
    instance_id: int
    slot_id: int
    call_id: str
    calling: str
    reached: str
    started_at: datetime


class InboundService(Protocol):
    async def admit(self, pbx_slug: str, instance_id: int, call_id: str) -> Admission: ...

    async def finished(self, call: InboundCall, result: FaxCallResult) -> None: ...


@dataclass
class FaxCallResult:
    call_id: str
    direction: f.Direction
    ok: bool
    reason: str
    phase_e: PhaseE | None
    remote_ident: str = ""
    pages: int = 0
    rx_file: Path | None = None
    rtp_received: int | None = None  # frames Asterisk sent us (None: no media was opened)


@dataclass
class _Call:
    id: str
    flow: f.FaxCallFlow
    options: FaxOptions
    tx_file: Path | None = None
    rx_file: Path | None = None
    law: str = "ulaw"
    media_id: str = ""
    bridge_id: str = ""
    endpoint: RtpFaxEndpoint | None = None
    remote_ident: str = ""
    dial_status: str = ""
    hangup_cause: int = 0
    ended: bool = False  # CallEnded was queued (once)
    # Set by the externalMedia channel's StasisStart. Asterisk answers the
    # REST call before that channel is in Stasis (it is originated on another
    # thread), and bridging it earlier fails with 422 "Channel not in Stasis
    # application" -- seen in CI about one run in three.
    media_entered: asyncio.Event = field(default_factory=asyncio.Event)
    inbound: InboundCall | None = None
    on_phase_b: Callable[[], None] | None = None  # a send's line is up: pages are going
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    queue: asyncio.Queue[f.Event] = field(default_factory=asyncio.Queue)
    result: asyncio.Future[FaxCallResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    worker: asyncio.Task[None] | None = None


MEDIA_ENTRY_TIMEOUT = 5.0  # seconds for the externalMedia channel's StasisStart


class FaxApplication:
    event_types = type_names(StasisStart, StasisEnd, Dial, ChannelHangupRequest, ChannelDestroyed)
    # Requests over HTTP, not the event websocket: with them on the websocket
    # (serialised on one Asterisk thread), T.38 calls through a second
    # Asterisk's gateway stalled far more often in the lab, 21 of 30 calls
    # against 2 of 8 (2026-12-04, test_fax_t38). The cause is not known yet.
    rest_over_websocket = False

    def __init__(
        self,
        runtime: AriRuntime,
        *,
        spool_dir: Path,
        options: FaxOptions | None = None,
        clock: MediaClock | None = None,
        media_host: str = "127.0.0.1",
        on_result: Callable[[FaxCallResult], None] | None = None,
        stall_after: float = 5.0,
        ari_app: str | None = None,
        max_calls: int = 0,
        max_media_load: float = 0.0,
        inbound: InboundService | None = None,
    ) -> None:
        """``max_calls``: simultaneous fax calls on this node (0: no cap);
        ``max_media_load``: the share of a core the media clock may take
        (0: not checked; see ``kalliope_tel.fax.admission``). A call over
        either is refused at once (congestion) and never answered.
        ``inbound``: the service calls for an instance are received for."""
        self.admission = MediaAdmission(max_calls, max_media_load)
        self.inbound = inbound
        self._after: set[asyncio.Task[None]] = set()  # service work after a call
        self.refused = 0
        self.stall_after = stall_after
        self.runtime = runtime
        # Channels we create (calls out, externalMedia) enter this ARI app; in
        # serve it is the node's own, whose events reach only this node.
        self.ari_app = ari_app or runtime.client.apps[0]
        self.spool_dir = spool_dir
        self.options = options or FaxOptions()
        self.clock = clock or MediaClock()
        self.media_host = media_host
        self.on_result = on_result
        self.calls: dict[str, _Call] = {}
        self._by_media: dict[str, str] = {}

    # ------------------------------------------------------------ sending
    async def send(
        self,
        endpoint: str,
        document: Path,
        *,
        options: FaxOptions | None = None,
        ring_timeout: int = 60,
        caller_id: str | None = None,
        variables: dict[str, str] | None = None,
        max_seconds: float = 900.0,
        call_id: str | None = None,
        on_phase_b: Callable[[], None] | None = None,
    ) -> FaxCallResult:
        """Call ``endpoint`` and send ``document`` (fax pages, see
        ``kalliope_tel.fax.documents.prepare``); returns when the call ends.
        Its requests, and those of the call's tasks, go over HTTP (see
        ``rest_over_websocket``)."""
        with over_http():
            return await self._send(
                endpoint, document, options, ring_timeout, caller_id, variables, max_seconds, call_id, on_phase_b
            )

    async def _send(
        self,
        endpoint: str,
        document: Path,
        options: FaxOptions | None,
        ring_timeout: int,
        caller_id: str | None,
        variables: dict[str, str] | None,
        max_seconds: float,
        call_id: str | None,
        on_phase_b: Callable[[], None] | None,
    ) -> FaxCallResult:
        call_id = call_id or f"kt-fax-{uuid.uuid4().hex[:12]}"
        if (refusal := self.refusal()) is not None:
            self.refused += 1
            return FaxCallResult(call_id, f.Direction.SEND, False, refusal, None)
        call = self._new_call(call_id, f.Direction.SEND, options, max_seconds)
        call.tx_file = document
        call.on_phase_b = on_phase_b
        self.runtime.track(call_id, APP_NAME)
        try:
            await self.runtime.client.originate(
                endpoint,
                app=self.ari_app,
                app_args=[APP_NAME, f.Direction.SEND.value],
                channel_id=call_id,
                timeout=ring_timeout,
                caller_id=caller_id,
                variables=variables,
            )
        except AriError as exc:
            call.queue.put_nowait(f.Failed(f"originate failed: {exc}"))
        return await call.result

    # ------------------------------------------------------------ ARI events
    async def on_event(self, event: Event) -> None:
        cid = event.channel_id or ""
        if cid in self._by_media:
            call = self.calls.get(self._by_media[cid])
            if call is not None and isinstance(event, ChannelDestroyed):
                call.queue.put_nowait(f.MediaLost())
            elif call is not None and isinstance(event, StasisStart):
                call.media_entered.set()
            return
        if isinstance(event, StasisStart):
            await self._stasis_start(event)
            return
        call = self.calls.get(cid)
        if call is None:
            return
        if isinstance(event, Dial) and event.dialstatus:
            call.dial_status = event.dialstatus
        elif isinstance(event, ChannelHangupRequest) and event.cause:
            call.hangup_cause = event.cause
        elif isinstance(event, ChannelDestroyed) and not call.ended:
            call.ended = True
            # The dial status says it best (BUSY, NOANSWER, CONGESTION...);
            # a Local channel's hang-up cause is often 0, "Unknown".
            dialled = call.dial_status if call.dial_status not in ("", "ANSWER") else ""
            cause_text = event.cause_txt if event.cause else ""
            cause = dialled.lower() or cause_text
            call.queue.put_nowait(f.CallEnded(event.cause, cause))
        elif isinstance(event, StasisEnd) and not call.ended:
            # A call the dialplan sent us that the caller hangs up leaves
            # Stasis, and its ChannelDestroyed then goes to no application:
            # StasisEnd is the last word we get. Without this the session ran
            # on until T.30 gave up (~16 s), holding its share of the fax cap.
            call.ended = True
            call.queue.put_nowait(f.CallEnded(call.hangup_cause, "left Stasis (hung up)"))

    async def on_channels_lost(self, channel_ids: set[str]) -> None:
        for cid in channel_ids:
            if cid in self._by_media and self._by_media[cid] in self.calls:
                self.calls[self._by_media[cid]].queue.put_nowait(f.MediaLost())
            elif cid in self.calls:
                self.calls[cid].queue.put_nowait(f.CallEnded(0, "lost while Asterisk was unreachable"))

    async def _stasis_start(self, event: StasisStart) -> None:
        cid = event.channel.id
        call = self.calls.get(cid)
        if call is None:  # a call the dialplan sent us: Stasis(app,fax,receive)
            args = event.args[1:] if event.args and event.args[0] == APP_NAME else []
            if not args or args[0] != f.Direction.RECEIVE.value:
                log.warning("fax.unsupported_entry", channel=cid, args=event.args)
                with contextlib.suppress(AriError):
                    await self.runtime.client.continue_in_dialplan(cid)
                return
            if (refusal := self.refusal()) is not None:
                # Refused before answering: the caller hears congestion and
                # retries later; the calls in progress keep their share.
                await self._refuse(cid, refusal)
                return
            inbound, options = None, None
            if len(args) >= 3 and self.inbound is not None:
                admitted = await self._admit(event, args[1], args[2], args[3] if len(args) > 3 else "")
                if admitted is None:
                    return
                inbound, options = admitted
            call = self._new_call(cid, f.Direction.RECEIVE, options, 900.0)
            call.inbound = inbound
        call.queue.put_nowait(f.Start(answered=event.channel.state == "Up"))

    async def _admit(
        self, event: StasisStart, pbx: str, instance: str, reached: str
    ) -> tuple[InboundCall, FaxOptions] | None:
        """Ask the service; a refused call hears congestion and is never answered."""
        cid = event.channel.id
        assert self.inbound is not None
        if not instance.isdigit():
            await self._refuse(cid, f"no such fax instance {instance!r}")
            return None
        try:
            admission = await self.inbound.admit(pbx, int(instance), cid)
        except Exception as exc:  # the database is down: the sender retries later
            log.warning("fax.admission_failed", channel=cid, error=str(exc))
            await self._refuse(cid, "admission failed")
            return None
        if not admission.admitted or admission.options is None:
            await self._refuse(cid, admission.reason)
            return None
        call = InboundCall(
            pbx,
            admission.instance_id,
            admission.slot_id,
            cid,
            event.channel.caller.number,
            reached or event.channel.dialplan.exten,
            datetime.now(UTC),
        )
        return call, admission.options

    async def _refuse(self, cid: str, reason: str) -> None:
        self.refused += 1
        log.warning("fax.refused", channel=cid, reason=reason, calls=len(self.calls))
        with contextlib.suppress(AriError):
            await self.runtime.client.hangup(cid, reason="congestion")

    def refusal(self) -> str | None:
        """Why this node takes no more fax calls now, or None."""
        return self.admission.refusal(len(self.calls), self.clock)

    def _new_call(self, call_id: str, direction: f.Direction, options: FaxOptions | None, max_seconds: float) -> _Call:
        call = _Call(call_id, f.FaxCallFlow(f.FlowConfig(direction, max_seconds=max_seconds)), options or self.options)
        if direction is f.Direction.RECEIVE:
            private_dir(self.spool_dir / "rx")  # received documents are someone's: owner-only
            call.rx_file = self.spool_dir / "rx" / f"{call_id}.tif"
        self.calls[call_id] = call
        call.worker = asyncio.create_task(self._work(call), name=f"fax-{call_id}")
        return call

    # ------------------------------------------------------------ the worker
    async def _work(self, call: _Call) -> None:
        try:
            while call.flow.state is not f.State.DONE:
                event = await call.queue.get()
                for command in call.flow.handle(event):
                    await self._do(call, command)
        except Exception as exc:  # a bug must not leave a call up or a caller waiting
            log.exception("fax.call_failed", call=call.id)
            await self._teardown(call)
            if not call.result.done():
                call.result.set_result(FaxCallResult(call.id, call.flow.config.direction, False, str(exc), None))
        finally:
            if call.endpoint is not None:
                call.endpoint.session.close()  # frees spandsp's C state
            self.calls.pop(call.id, None)
            self._by_media.pop(call.media_id, None)

    async def _do(self, call: _Call, command: f.Command) -> None:
        client = self.runtime.client
        match command:
            case f.Answer():
                try:
                    await client.answer(call.id)
                    call.queue.put_nowait(f.Answered())
                except AriError as exc:
                    call.queue.put_nowait(f.Failed(f"answer failed: {exc}"))
            case f.OpenMedia():
                await self._open_media(call)
            case f.Bridge(media_channel_id=media_id):
                try:
                    call.bridge_id = f"{call.id}-bridge"
                    await client.create_bridge("mixing", bridge_id=call.bridge_id)
                    await client.add_to_bridge(call.bridge_id, [call.id, media_id])
                    call.queue.put_nowait(f.Bridged())
                except AriError as exc:
                    call.queue.put_nowait(f.Failed(f"bridge failed: {exc}"))
            case f.StopSession(reason=reason):
                log.info("fax.stopping", call=call.id, reason=reason)
                if call.endpoint is not None:
                    call.endpoint.session.hang_up()
                else:
                    call.queue.put_nowait(f.Failed(reason))
            case f.StartTimer(name=name, seconds=seconds):
                loop = asyncio.get_running_loop()
                call.timers[name] = loop.call_later(seconds, call.queue.put_nowait, f.TimerFired(name))
            case f.CancelTimer(name=name):
                handle = call.timers.pop(name, None)
                if handle is not None:
                    handle.cancel()
            case f.Teardown():
                await self._teardown(call)
            case f.Finish(ok=ok, reason=reason, result=result):
                self._finish(call, ok, reason, result)

    async def _open_media(self, call: _Call) -> None:
        direction = call.flow.config.direction
        session = AudioFaxSession(
            calling=direction is f.Direction.SEND,
            options=call.options,
            tx_file=call.tx_file,
            rx_file=call.rx_file,
            law=call.law,
            tag=call.id,
        )
        endpoint = RtpFaxEndpoint(
            session,
            self.clock,
            law=call.law,
            on_event=lambda e: self._fax_event(call, e),
            stall_after=self.stall_after,
            on_stall=lambda: call.queue.put_nowait(f.MediaLost(STALLED)),
        )
        await open_endpoint(endpoint, (self.media_host, 0))
        call.endpoint = endpoint
        endpoint.finished.add_done_callback(lambda fut: self._session_ended(call, fut))
        host, port = endpoint.local_address
        call.media_id = f"{call.id}-media"
        self._by_media[call.media_id] = call.id
        self.runtime.track(call.media_id, APP_NAME)
        try:
            channel = await self.runtime.client.external_media(
                self.ari_app, f"{host}:{port}", audio_format=call.law, channel_id=call.media_id
            )
        except AriError as exc:
            call.queue.put_nowait(f.Failed(f"externalMedia failed: {exc}"))
            return
        variables = channel.channelvars or {}
        address, rtp_port = variables.get("UNICASTRTP_LOCAL_ADDRESS"), variables.get("UNICASTRTP_LOCAL_PORT")
        if address and rtp_port:
            endpoint.remote = (address, int(rtp_port))  # send before hearing from it
        try:
            await asyncio.wait_for(call.media_entered.wait(), MEDIA_ENTRY_TIMEOUT)
        except TimeoutError:
            call.queue.put_nowait(f.Failed("the externalMedia channel never entered Stasis"))
            return
        call.queue.put_nowait(f.MediaReady(call.media_id))

    def _fax_event(self, call: _Call, event: FaxEvent) -> None:
        if isinstance(event, PhaseB):
            call.remote_ident = event.remote_ident
            if call.on_phase_b is not None:
                call.on_phase_b()
        log.info("fax.progress", call=call.id, kind=type(event).__name__, **vars(event))

    def _session_ended(self, call: _Call, fut: asyncio.Future[PhaseE]) -> None:
        if fut.cancelled():
            return  # closed by our own teardown
        exc = fut.exception()
        if exc is not None:
            call.queue.put_nowait(f.Failed(f"the fax media failed: {exc}"))
        else:
            call.queue.put_nowait(f.FaxDone(fut.result()))

    async def _teardown(self, call: _Call) -> None:
        client = self.runtime.client
        if call.endpoint is not None:
            call.endpoint.close()
        for channel_id in (call.media_id, call.id):
            if channel_id:
                with contextlib.suppress(AriError):
                    await client.hangup(channel_id)
        if call.bridge_id:
            with contextlib.suppress(AriError):
                await client.delete_bridge(call.bridge_id)

    def _finish(self, call: _Call, ok: bool, reason: str, phase_e: PhaseE | None) -> None:
        direction = call.flow.config.direction
        pages = 0
        if phase_e is not None:
            pages = phase_e.pages_rx if direction is f.Direction.RECEIVE else phase_e.pages_tx
        result = FaxCallResult(
            call.id,
            direction,
            ok,
            reason,
            phase_e,
            remote_ident=call.remote_ident,
            pages=pages,
            rx_file=call.rx_file if pages else None,
            rtp_received=call.endpoint.jitter.stats.received if call.endpoint is not None else None,
        )
        media = {}
        if call.endpoint is not None:
            jitter = call.endpoint.jitter.stats
            media = {f"rtp_{k}": v for k, v in vars(jitter).items()}
        clock = self.clock.stats
        log.info(
            "fax.finished",
            call=call.id,
            direction=direction.value,
            ok=ok,
            reason=reason,
            pages=pages,
            clock_max_late_ms=round(clock.max_late * 1000, 1),
            **media,
        )
        if not call.result.done():
            call.result.set_result(result)
        if self.on_result is not None:
            self.on_result(result)
        if call.inbound is not None and self.inbound is not None:
            task = asyncio.create_task(self._hand_over(call.inbound, result), name=f"fax-after-{call.id}")
            self._after.add(task)
            task.add_done_callback(self._after.discard)

    async def _hand_over(self, call: InboundCall, result: FaxCallResult) -> None:
        assert self.inbound is not None
        try:
            await self.inbound.finished(call, result)
        except Exception:
            # The pages stay in the spool (rx_file) for an operator; the log says which.
            log.exception("fax.hand_over_failed", call=call.call_id, rx_file=str(result.rx_file))

    async def wait_idle(self, timeout: float) -> bool:
        workers: list[asyncio.Task[None]] = [c.worker for c in self.calls.values() if c.worker is not None]
        workers += list(self._after)
        if not workers:
            return True
        _done, pending = await asyncio.wait(workers, timeout=timeout)
        return not pending


# ---------------------------------------------------------------- the service's adapters
def outcome(result: FaxCallResult) -> dict[str, Any]:
    """What the service records of a call, whichever way it went."""
    phase_e = result.phase_e
    return {
        "ok": result.ok,
        "reason": "" if result.ok else result.reason,
        "pages": result.pages,
        "bit_rate": phase_e.bit_rate if phase_e else 0,
        "ecm": phase_e.ecm if phase_e else False,
        "remote_ident": result.remote_ident,
    }


class ServiceInbound:
    """Calls for a fax instance, handed to the fax service (``FaxService``)."""

    def __init__(self, service: FaxService) -> None:
        self.service = service

    async def admit(self, pbx_slug: str, instance_id: int, call_id: str) -> Admission:
        return await self.service.admit(pbx_slug, instance_id, call_id)

    async def finished(self, call: InboundCall, result: FaxCallResult) -> None:
        from kalliope_tel.fax.inbound import Reception
        from kalliope_tel.fax.models import Media

        reception = Reception(
            call_id=call.call_id,
            calling=call.calling,
            reached=call.reached,
            started_at=call.started_at,
            ended_at=datetime.now(UTC),
            media=Media.ENGINE,
            **outcome(result),
        )
        await self.service.received(call.pbx, call.instance_id, call.slot_id, reception, result.rx_file)


class JobEngine:
    """Places the fax service's send attempts through a ``FaxApplication``."""

    def __init__(self, app: FaxApplication, data_dir: Path) -> None:
        self.app = app
        self.data_dir = data_dir

    @property
    def room(self) -> int:
        if self.app.refusal() is not None:  # the count, or the media engine's load
            return 0
        cap = self.app.admission.max_calls or 1_000
        return max(cap - len(self.app.calls), 0)

    async def send(self, claim: SendClaim, on_phase_b: Callable[[], None]) -> AttemptResult:
        from kalliope_tel.fax.jobs import AttemptResult

        result = await self.app.send(
            claim.endpoint,
            self.data_dir / claim.document,
            options=claim.options,
            call_id=claim.call_id,
            on_phase_b=on_phase_b,
            max_seconds=claim.max_seconds,  # from the pages: a long fax is not cut at a fixed cap
        )
        return AttemptResult(**outcome(result))

    async def hangup(self, call_id: str) -> None:
        with contextlib.suppress(AriError), over_http():
            await self.app.runtime.client.hangup(call_id)
