"""The fax media engine: UDP sockets, a 20 ms clock, and the sans-IO parts.

One ``MediaClock`` paces every endpoint of a process: each tick (absolute
deadlines, so pacing never drifts) hands every endpoint one frame's worth of
time. A tick that runs late is measured, and missed ticks are run at once so
the far end still gets 50 frames a second on average. ``RtpFaxEndpoint``
carries an audio session over RTP (G.711, optional RFC 2198 redundancy);
``UdptlFaxEndpoint`` carries a T.38 session over UDPTL with redundancy.
Both learn the far end's address from its first packet when none is given
(symmetric RTP, as Asterisk's externalMedia expects).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from kalliope_tel.fax.rtp import PAYLOAD_TYPES, SILENCE, JitterBuffer, RtpSender
from kalliope_tel.fax.session import AudioFaxSession, FaxEvent, PhaseE, T38FaxSession
from kalliope_tel.fax.udptl import UdptlDecoder, UdptlEncoder

log = structlog.get_logger(__name__)
PTIME = 0.020
FRAME = 160
Address = tuple[str, int]


class Ticking(Protocol):
    def on_tick(self) -> None: ...

    def fail(self, exc: Exception) -> None: ...


@dataclass
class ClockStats:
    ticks: int = 0
    max_late: float = 0.0  # seconds a tick ran after its deadline, at worst
    late_ticks: int = 0  # ticks more than one frame late
    caught_up: int = 0  # ticks run back to back after falling behind


class MediaClock:
    """Ticks every registered endpoint each ``ptime``."""

    def __init__(self, ptime: float = PTIME) -> None:
        self.ptime = ptime
        self.stats = ClockStats()
        self._endpoints: list[Ticking] = []
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = 0.0

    def add(self, endpoint: Ticking) -> None:
        self._endpoints.append(endpoint)
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.time() + self.ptime
            self._handle = loop.call_at(self._deadline, self._tick)

    def remove(self, endpoint: Ticking) -> None:
        with contextlib.suppress(ValueError):
            self._endpoints.remove(endpoint)
        if not self._endpoints and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        late = loop.time() - self._deadline
        stats = self.stats
        if late > stats.max_late:
            stats.max_late = late
        if late > self.ptime:
            stats.late_ticks += 1
        while True:
            stats.ticks += 1
            for endpoint in list(self._endpoints):
                try:
                    endpoint.on_tick()
                except Exception as exc:  # one broken call must not stop the others' audio
                    log.exception("fax_endpoint_tick_failed")
                    endpoint.fail(exc)
            self._deadline += self.ptime
            if loop.time() < self._deadline or not self._endpoints:
                break
            stats.caught_up += 1
        if self._endpoints:
            self._handle = loop.call_at(self._deadline, self._tick)
        else:
            self._handle = None


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, clock: MediaClock, remote: Address | None, on_event: Callable[[FaxEvent], None] | None) -> None:
        self.clock = clock
        self.remote = remote
        self.on_event = on_event
        self.transport: asyncio.DatagramTransport | None = None
        self.finished: asyncio.Future[PhaseE] = asyncio.get_running_loop().create_future()

    @property
    def local_address(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport, not its ABC
        self.clock.add(self)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the far end is not up yet: keep going.
        log.debug("fax_media_socket_error", error=str(exc))

    def _send(self, datagram: bytes) -> None:
        if self.remote is not None and self.transport is not None:
            self.transport.sendto(datagram, self.remote)

    def _learn(self, addr: Address) -> None:
        if self.remote is None:
            self.remote = addr

    def _after(self, session: AudioFaxSession | T38FaxSession) -> None:
        if session.pending_events:
            for event in session.events():
                if self.on_event is not None:
                    try:
                        self.on_event(event)
                    except Exception:  # a listener's bug must not cost the call
                        log.exception("fax_event_listener_failed")
        if session.result is not None and not self.finished.done():
            # The socket stays open, sending silence, until the owner closes
            # it: the far end still has our last frames to play out and its
            # own end of the call to finish.
            self.finished.set_result(session.result)

    def on_tick(self) -> None:
        raise NotImplementedError

    def fail(self, exc: Exception) -> None:
        """The endpoint broke: stop it, and let whoever waits know why."""
        if not self.finished.done():
            self.finished.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.clock.remove(self)
        if self.transport is not None:
            self.transport.close()
        if not self.finished.done():
            self.finished.cancel()


class RtpFaxEndpoint(_Endpoint):
    """An audio fax session on an RTP socket: one frame in and one out per tick."""

    def __init__(
        self,
        session: AudioFaxSession,
        clock: MediaClock,
        *,
        law: str = "ulaw",
        remote: Address | None = None,
        redundancy: int = 0,
        jitter_depth: int = 2,
        on_event: Callable[[FaxEvent], None] | None = None,
        stall_after: float = 5.0,
        on_stall: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(clock, remote, on_event)
        self.session = session
        # Audio that flowed and then stopped while the fax is still going:
        # the far end's media is dead (one-way audio), and T.30 would only
        # find out after its retries run out.
        self.stall_ticks = round(stall_after / clock.ptime)
        self.on_stall = on_stall
        self.stalled = False
        self._quiet_ticks = 0
        pt = PAYLOAD_TYPES[law]
        self.sender = RtpSender(pt, redundancy=redundancy)
        self.jitter = JitterBuffer(pt, depth=jitter_depth + (1 if redundancy else 0))
        self._silence = bytes([SILENCE[pt]]) * FRAME
        self._exchange = session.exchange_g711

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._learn(addr)
        self._quiet_ticks = 0
        self.jitter.push_datagram(data)

    def on_tick(self) -> None:
        # Before the far end's first frame (and while the buffer fills) the
        # line is silent; after that a missing frame is a loss (None).
        frame = self.jitter.pop() if self.jitter.started else self._warm_up()
        self._send(self.sender.build(self._exchange(frame)))
        self._after(self.session)
        if self.jitter.started and self.session.result is None:
            self._quiet_ticks += 1
            if self._quiet_ticks == self.stall_ticks and not self.stalled:
                self.stalled = True
                log.warning("fax_media_stalled", seconds=self.stall_ticks * self.clock.ptime)
                if self.on_stall is not None:
                    self.on_stall()

    def _warm_up(self) -> bytes:
        self.jitter.pop()  # counts down the buffer's fill time
        return self._silence


class UdptlFaxEndpoint(_Endpoint):
    """A T.38 fax session on a UDPTL socket."""

    def __init__(
        self,
        session: T38FaxSession,
        clock: MediaClock,
        *,
        remote: Address | None = None,
        redundancy: int = 3,
        on_event: Callable[[FaxEvent], None] | None = None,
    ) -> None:
        super().__init__(clock, remote, on_event)
        self.session = session
        self.encoder = UdptlEncoder(redundancy)
        self.decoder = UdptlDecoder()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._learn(addr)
        for seq, ifp in self.decoder.feed(data):
            self.session.receive_ifp(ifp, seq)
        for ifp in self.session.take_packets():
            self._send(self.encoder.encode(ifp))
        self._after(self.session)

    def on_tick(self) -> None:
        for ifp in self.session.tick(FRAME):
            self._send(self.encoder.encode(ifp))
        self._after(self.session)


async def open_endpoint(endpoint: _Endpoint, local: Address = ("127.0.0.1", 0)) -> _Endpoint:
    """Bind ``endpoint`` to a UDP socket; it starts ticking at once."""
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: endpoint, local_addr=local)
    return endpoint
