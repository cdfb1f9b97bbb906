"""The fax media engine: UDP sockets, a 20 ms clock, and the sans-IO parts.

One ``MediaClock`` paces every endpoint of a process: each tick (absolute
deadlines, so pacing never drifts) hands every endpoint one frame's worth of
time. A tick that runs late is measured, and missed ticks are run at once so
the far end still gets 50 frames a second on average. ``RtpFaxEndpoint``
carries an audio session over RTP (G.711, optional RFC 2198 redundancy);
``UdptlFaxEndpoint`` carries a T.38 session over UDPTL with redundancy.

RTP sockets are not asyncio transports: the clock reads them itself at each
tick (one non-blocking ``epoll`` for all of them, then one ``recvfrom`` per
datagram) and sends with a plain ``sendto``. With asyncio each datagram
woke the loop on its own, 50 times a second per call, and went through a
selector callback, a context run and a protocol method; at 300 calls that
was most of a core (``bench fax``: 200 receptions took 88 % of one, 300
failed every call). A frame read at the tick instead of on arrival waits
at most one tick, which the jitter buffer's depth already allows for.
Both learn the far end's address from its first packet when none is given
(symmetric RTP, as Asterisk's externalMedia expects).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

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
    peak_load: float = 0.0  # the highest ``MediaClock.load`` seen


# Datagrams read per socket in one turn at most (a turn normally finds one;
# after a stall of the far end, its burst).
READ_ROUNDS = 32
# Weight of each turn in the load average: about a second (50 turns) of memory.
LOAD_SMOOTHING = 0.02
# The per-call cost is measured with at least this many calls ticking (with
# fewer, the turn's fixed cost, the poll, weighs on each), and its peak
# decays to a third in about ten minutes of turns.
PEAK_MIN_CALLS = 10
PEAK_DECAY = 0.99997


class _Poller(Protocol):
    def register(self, fd: int, eventmask: int = ...) -> None: ...

    def unregister(self, fd: int) -> None: ...

    def poll(self, timeout: float | None = ..., /) -> list[tuple[int, int]]: ...


def _poller() -> tuple[_Poller, float]:
    """epoll where there is one (Linux), else poll; with the timeout that
    means "do not wait" for each (seconds for epoll, milliseconds for poll)."""
    if hasattr(select, "epoll"):
        return select.epoll(), 0.0
    return select.poll(), 0  # pragma: no cover - not Linux


class MediaClock:
    """Ticks every registered endpoint each ``ptime``, after reading the
    datagrams waiting on the sockets it watches."""

    def __init__(self, ptime: float = PTIME) -> None:
        self.ptime = ptime
        self.stats = ClockStats()
        self._endpoints: list[Ticking] = []
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._poller, self._no_wait = _poller()
        self._readers: dict[int, Callable[[], None]] = {}
        # Share of one core the turns take, averaged over about a second:
        # what admission control (fax.admission) weighs a new call against.
        self.load = 0.0
        # The same share per endpoint ticking, averaged the same way: the
        # cost of one call, which admission multiplies by the calls taken.
        # A call costs about three times more once pages flow (the fast
        # modem's receiver runs) than while it negotiates, so admission
        # weighs calls at the highest average seen (``peak_call_load``),
        # forgotten slowly. Both are kept when the last call ends: they are
        # this machine's figures, and the next burst is weighed with them
        # before any of its calls ticks.
        self.call_load = 0.0
        self.peak_call_load = 0.0

    @property
    def active(self) -> int:
        """Endpoints ticking now."""
        return len(self._endpoints)

    def watch(self, fd: int, reader: Callable[[], None]) -> None:
        """Call ``reader`` before each tick while ``fd`` has a datagram (one
        datagram per call: the poll is level-triggered and asks again)."""
        self._poller.register(fd, select.POLLIN)
        self._readers[fd] = reader

    def unwatch(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                self._poller.unregister(fd)

    def _read_sockets(self) -> None:
        readers = self._readers
        if not readers:
            return
        poll, no_wait = self._poller.poll, self._no_wait
        # Bounded: a socket flooded faster than we read must not hold the
        # turn (and every other call's audio) for ever; what is left waits
        # for the next turn. One round reads one datagram per socket.
        for _ in range(READ_ROUNDS):
            ready = poll(no_wait)
            if not ready:
                return
            for fd, _ in ready:
                reader = readers.get(fd)
                if reader is None:  # nobody reads it any more: stop it waking every round
                    with contextlib.suppress(OSError, ValueError, KeyError):
                        self._poller.unregister(fd)
                    continue
                try:
                    reader()
                except Exception:  # a reader's bug must not stop the clock (and every call's audio)
                    log.exception("fax_media_reader_failed")
                    self.unwatch(fd)

    def add(self, endpoint: Ticking) -> None:
        self._endpoints.append(endpoint)
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.time() + self.ptime
            self._handle = loop.call_at(self._deadline, self._tick)

    def remove(self, endpoint: Ticking) -> None:
        with contextlib.suppress(ValueError):
            self._endpoints.remove(endpoint)
        if not self._endpoints:
            self.load = 0.0
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        stats = self.stats
        while True:
            # Each turn's lateness, the ones run back to back included: a
            # turn that took 400 ms shows in the turns after it.
            late = loop.time() - self._deadline
            if late > stats.max_late:
                stats.max_late = late
            if late > self.ptime:
                stats.late_ticks += 1
            stats.ticks += 1
            started = time.perf_counter()
            self._read_sockets()
            for endpoint in list(self._endpoints):
                try:
                    endpoint.on_tick()
                except Exception as exc:  # one broken call must not stop the others' audio
                    log.exception("fax_endpoint_tick_failed")
                    endpoint.fail(exc)
            share = (time.perf_counter() - started) / self.ptime
            self.load += (share - self.load) * LOAD_SMOOTHING
            if len(self._endpoints) >= PEAK_MIN_CALLS:
                self.call_load += (share / len(self._endpoints) - self.call_load) * LOAD_SMOOTHING
                self.peak_call_load = max(self.call_load, self.peak_call_load * PEAK_DECAY)
            if self.load > stats.peak_load:
                stats.peak_load = self.load
            self._deadline += self.ptime
            if loop.time() < self._deadline or not self._endpoints:
                break
            stats.caught_up += 1
        if self._endpoints:
            self._handle = loop.call_at(self._deadline, self._tick)
        else:
            self._handle = None


class _Endpoint:
    """What both kinds of endpoint share: the session's events and result."""

    def __init__(self, clock: MediaClock, remote: Address | None, on_event: Callable[[FaxEvent], None] | None) -> None:
        self.clock = clock
        self.remote = remote
        self.on_event = on_event
        self.finished: asyncio.Future[PhaseE] = asyncio.get_running_loop().create_future()

    @property
    def local_address(self) -> Address:
        raise NotImplementedError

    async def open(self, local: Address) -> None:
        raise NotImplementedError

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
        if not self.finished.done():
            self.finished.cancel()


@dataclass
class SocketStats:
    send_dropped: int = 0  # the socket's send buffer was full: the frame is lost, as on a wire
    errors: int = 0  # other socket errors (ICMP unreachable while the far end is not up...)


class RtpFaxEndpoint(_Endpoint):
    """An audio fax session on an RTP socket: one frame in and one out per
    tick. The socket is the clock's to read (see the module's docstring)."""

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
        self.socket_stats = SocketStats()
        self._silence = bytes([SILENCE[pt]]) * FRAME
        self._exchange = session.exchange_g711
        self._sock: socket.socket | None = None
        self._connected = False
        self._playing = False  # the far end's frames are being played (the buffer has filled)

    @property
    def local_address(self) -> Address:
        assert self._sock is not None
        host, port = self._sock.getsockname()[:2]
        return host, port

    async def open(self, local: Address) -> None:
        try:  # an address (what media_host is): no resolver, no thread hop
            infos = socket.getaddrinfo(local[0], local[1], type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            infos = await asyncio.get_running_loop().getaddrinfo(local[0], local[1], type=socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(sockaddr)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.clock.watch(sock.fileno(), self._read)
        self.clock.add(self)

    def _read(self) -> None:
        assert self._sock is not None
        try:
            if self._connected:
                data = self._sock.recv(2048)
            else:
                data, addr = self._sock.recvfrom(2048)
                self._learn(addr)
                if addr == self.remote:
                    self._connect()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.socket_stats.errors += 1
            log.debug("fax_media_socket_error", error=str(exc))
            return
        self._quiet_ticks = 0
        self.jitter.push_datagram(data)

    def _connect(self) -> None:
        # The far end sends from where we send to (symmetric RTP, as
        # Asterisk's externalMedia does): from now on the socket is
        # connected to it. The kernel then keeps the route instead of
        # looking it up for every frame, Python stops parsing the address
        # tuple for every sendto, and datagrams from anyone else are
        # dropped before they reach us. Until the far end is heard from, we
        # send with sendto: an address it does not send from must not cut
        # its audio off.
        assert self._sock is not None and self.remote is not None
        self._sock.connect(self.remote)
        self._connected = True

    def on_tick(self) -> None:
        # The hot path: 50 times a second per call, so written flat (each
        # method call here cost about 1 % of a core at 300 calls).
        jitter = self.jitter
        if self._playing:
            frame = jitter.pop()
        else:
            # Before the far end's first frame, and while the buffer fills,
            # the line is silent; after that a missing frame is a loss (None).
            jitter.pop()  # counts down the buffer's fill time
            frame = self._silence
            self._playing = jitter.started
        packet = self.sender.build(self._exchange(frame))
        sock = self._sock
        if sock is not None:
            try:
                if self._connected:
                    sock.send(packet)
                elif self.remote is not None:
                    sock.sendto(packet, self.remote)
            except (BlockingIOError, InterruptedError):
                self.socket_stats.send_dropped += 1
            except OSError as exc:
                self.socket_stats.errors += 1
                log.debug("fax_media_socket_error", error=str(exc))
        session = self.session
        if jitter.extra_due and frame and (extra := jitter.pop_extra()) is not None:
            session.receive_g711(extra)
        if session.result is not None or session.pending_events:
            self._after(session)
        if self._playing and session.result is None:
            self._quiet_ticks += 1
            if self._quiet_ticks == self.stall_ticks and not self.stalled:
                self.stalled = True
                log.warning("fax_media_stalled", seconds=self.stall_ticks * self.clock.ptime)
                if self.on_stall is not None:
                    self.on_stall()

    def close(self) -> None:
        super().close()
        if self._sock is not None:
            self.clock.unwatch(self._sock.fileno())
            self._sock.close()
            self._sock = None


class UdptlFaxEndpoint(_Endpoint, asyncio.DatagramProtocol):
    """A T.38 session on a UDPTL socket. T.38 answers packets as they come
    (no audio frames to pace), so this one stays an asyncio protocol."""

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
        self.transport: asyncio.DatagramTransport | None = None

    @property
    def local_address(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    async def open(self, local: Address) -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, local_addr=local)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport, not its ABC
        self.clock.add(self)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the far end is not up yet: keep going.
        log.debug("fax_media_socket_error", error=str(exc))

    def _send(self, datagram: bytes) -> None:
        if self.remote is not None and self.transport is not None:
            self.transport.sendto(datagram, self.remote)

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

    def close(self) -> None:
        super().close()
        if self.transport is not None:
            self.transport.close()


EndpointT = TypeVar("EndpointT", bound=_Endpoint)


async def open_endpoint(endpoint: EndpointT, local: Address = ("127.0.0.1", 0)) -> EndpointT:
    """Bind ``endpoint`` to a UDP socket; it starts ticking at once."""
    await endpoint.open(local)
    return endpoint
