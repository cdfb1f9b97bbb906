"""Fax sessions as sans-IO objects over spandsp.

An audio session is fed 8 kHz 16-bit PCM (``receive_audio``) and asked for
the audio to send (``transmit_audio``); a T.38 session is fed IFP packets
(``receive_ifp``) and clock ticks (``tick``), and returns the IFP packets to
send. Neither touches a socket or a clock: transports (RTP, UDPTL) and
tests drive them. What happens is reported as events: phase B (negotiated:
remote station id, bit rate, ECM), each page (phase D), and phase E (the
result with spandsp's completion text and page counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kalliope_tel.fax import spandsp, spandsp_log
from kalliope_tel.fax.spandsp import (
    G711_ALAW,
    G711_ULAW,
    SPAN_LOG_WARNING,
    T4_1D,
    T4_2D,
    T6,
    T30_ERR_OK,
    V17,
    V27TER,
    V29,
    c_text,
    completion_text,
    ffi,
    lib,
)

SAMPLE_RATE = 8000
MAX_FRAME = 8000  # samples per call at most: one second
# The fastest rate each modem reaches, and the slowest.
MODEM_RATES = {V27TER: (2400, 4800), V29: (7200, 9600), V17: (7200, 14400)}
G711_LAWS = {"ulaw": G711_ULAW, "alaw": G711_ALAW}


@dataclass(frozen=True)
class FaxOptions:
    """What a fax instance sets for a call (KalliopePBX's fax instance fields)."""

    local_ident: str = ""  # up to 20 characters
    header: str = ""  # page header line, up to 50 characters
    ecm: bool = True
    modems: int = V17 | V29 | V27TER
    min_rate: int = 2400
    max_rate: int = 14400
    log_level: int = SPAN_LOG_WARNING

    def __post_init__(self) -> None:
        if len(self.local_ident) > 20:
            raise ValueError("local station id: at most 20 characters")
        if len(self.header) > 50:
            raise ValueError("page header: at most 50 characters")
        if not 2400 <= self.min_rate <= self.max_rate <= 14400:
            raise ValueError("rates: need 2400 <= minimum <= maximum <= 14400 bit/s")
        if not self.usable_modems:
            raise ValueError("no enabled modem reaches a rate between the minimum and the maximum")

    @property
    def usable_modems(self) -> int:
        """Enabled modems whose rates overlap [min_rate, max_rate].

        spandsp picks the rate inside a modem itself, so the maximum rate is
        honoured by leaving out modems that start above it (V.17 starts at
        14,400); the minimum also ends the call if training falls below it.
        """
        out = 0
        for modem, (_slowest, fastest) in MODEM_RATES.items():
            if self.modems & modem and self.min_rate <= fastest <= self.max_rate:
                out |= modem
        return out


@dataclass(frozen=True)
class PhaseB:
    remote_ident: str
    bit_rate: int
    ecm: bool


@dataclass(frozen=True)
class PageDone:
    pages_tx: int
    pages_rx: int


@dataclass(frozen=True)
class PhaseE:
    code: int
    text: str
    pages_tx: int
    pages_rx: int
    bit_rate: int
    ecm: bool

    @property
    def ok(self) -> bool:
        return self.code == T30_ERR_OK


FaxEvent = PhaseB | PageDone | PhaseE

# spandsp states allocated and not yet freed. A session owns C memory (its
# T.30 state, image buffers, an open TIFF): close() frees it; serve reports
# this count so a leak shows (issue 11: nothing freed it after a call).
_live = 0
_created = 0


def live_sessions() -> int:
    return _live


def sessions_created() -> int:
    return _created


def _born() -> None:
    global _live, _created
    _live += 1
    _created += 1


def _freed() -> None:
    global _live
    _live -= 1


@dataclass
class _Common:
    calling: bool
    options: FaxOptions
    tx_file: Path | None
    rx_file: Path | None
    tag: str = ""
    _events: list[FaxEvent] = field(default_factory=list)
    result: PhaseE | None = None
    _keep: list[Any] = field(default_factory=list)  # cffi callbacks/handles C may call
    _t30: Any = None

    def _configure(self, t30: Any, log_states: list[Any]) -> None:
        o, api = self.options, lib()
        self._t30 = t30
        for state in [api.t30_get_logging_state(t30), *log_states]:
            spandsp_log.route(state, self.tag, o.log_level)
        if o.local_ident:
            api.t30_set_tx_ident(t30, o.local_ident.encode())
        if o.header:
            api.t30_set_tx_page_header_info(t30, o.header.encode())
        api.t30_set_ecm_capability(t30, int(o.ecm))
        api.t30_set_supported_modems(t30, o.usable_modems)
        # T.6 exists only with ECM.
        api.t30_set_supported_compressions(t30, T4_1D | T4_2D | (T6 if o.ecm else 0))
        if self.tx_file is not None:
            api.t30_set_tx_file(t30, str(self.tx_file).encode(), -1, -1)
        if self.rx_file is not None:
            api.t30_set_rx_file(t30, str(self.rx_file).encode(), -1)
        handle = ffi.new_handle(self)

        @ffi.callback("t30_phase_b_handler_t")
        def phase_b(s: Any, user: Any, result: int) -> int:
            stats = self._stats(s)
            remote = c_text(api.t30_get_rx_ident(s))  # "" when the far end sent none
            self._events.append(PhaseB(remote, stats.bit_rate, bool(stats.error_correcting_mode)))
            return 0

        @ffi.callback("t30_phase_d_handler_t")
        def phase_d(s: Any, user: Any, result: int) -> int:
            stats = self._stats(s)
            self._events.append(PageDone(stats.pages_tx, stats.pages_rx))
            if 0 < stats.bit_rate < o.min_rate:
                # Training settled below the instance's minimum: end the call.
                api.t30_terminate(s)
            return 0

        @ffi.callback("t30_phase_e_handler_t")
        def phase_e(s: Any, user: Any, code: int) -> None:
            stats = self._stats(s)
            self.result = PhaseE(
                code,
                completion_text(code),
                stats.pages_tx,
                stats.pages_rx,
                stats.bit_rate,
                bool(stats.error_correcting_mode),
            )
            self._events.append(self.result)

        api.t30_set_phase_b_handler(t30, phase_b, handle)
        api.t30_set_phase_d_handler(t30, phase_d, handle)
        api.t30_set_phase_e_handler(t30, phase_e, handle)
        self._keep += [handle, phase_b, phase_d, phase_e]

    @staticmethod
    def _stats(t30: Any) -> Any:
        stats = ffi.new("t30_stats_t *")
        lib().t30_get_transfer_statistics(t30, stats)
        return stats

    def events(self) -> list[FaxEvent]:
        """Events since the last call."""
        out, self._events = self._events, []
        return out

    @property
    def pending_events(self) -> bool:
        return bool(self._events)

    @property
    def done(self) -> bool:
        return self.result is not None

    def hang_up(self) -> None:
        """The call ended under us (far end hung up): phase E follows at once."""
        if self.result is None and self._t30 is not None:
            lib().t30_terminate(self._t30)


class AudioFaxSession(_Common):
    """A fax endpoint over G.711-carried audio.

    Audio is 8 kHz 16-bit little-endian PCM (``receive_audio`` /
    ``transmit_audio``) or G.711 octets in the session's law
    (``receive_g711`` / ``transmit_g711``), coded in C by spandsp. The hot
    path keeps its C functions and buffers bound once, so a 20 ms frame costs
    a few C calls and one bytes object: the binding's overhead is measured by
    ``bench fax`` against spandsp's own C loop.
    """

    def __init__(
        self,
        *,
        calling: bool,
        options: FaxOptions | None = None,
        tx_file: Path | None = None,
        rx_file: Path | None = None,
        law: str = "ulaw",
        tag: str = "",
    ) -> None:
        super().__init__(calling, options or FaxOptions(), tx_file, rx_file, tag)
        if law not in G711_LAWS:
            raise ValueError(f"G.711 law: one of {', '.join(G711_LAWS)}")
        api = lib()
        self._state = api.fax_init(ffi.NULL, int(calling))
        if self._state == ffi.NULL:
            raise RuntimeError("spandsp fax_init failed")
        # Keep sending silence between signals, so every tx frame is full.
        api.fax_set_transmit_on_idle(self._state, 1)
        self._configure(api.fax_get_t30_state(self._state), [api.fax_get_logging_state(self._state)])
        self._g711 = api.g711_init(ffi.NULL, G711_LAWS[law])
        self._rx = ffi.new("int16_t[]", MAX_FRAME)
        self._tx = ffi.new("int16_t[]", MAX_FRAME)
        self._tx_pcm = ffi.buffer(self._tx)
        self._tx_g711 = ffi.new("uint8_t[]", MAX_FRAME)
        self._tx_g711_bytes = ffi.buffer(self._tx_g711)
        self._fax_rx, self._fax_tx, self._fillin = api.fax_rx, api.fax_tx, api.fax_rx_fillin
        self._decode, self._encode = api.g711_decode, api.g711_encode
        self._exchange = getattr(api, "kt_exchange_g711", None) if spandsp.MODE == "api" else None
        _born()

    def receive_audio(self, pcm: bytes) -> None:
        """Feed received audio: little-endian int16 samples."""
        n = len(pcm) >> 1
        if n > MAX_FRAME:
            raise ValueError("at most one second of audio per call")
        ffi.memmove(self._rx, pcm, n << 1)  # fax_rx writes into its input
        self._fax_rx(self._state, self._rx, n)

    def receive_g711(self, payload: bytes) -> None:
        """Feed received G.711 octets (one per sample)."""
        n = len(payload)
        if n > MAX_FRAME:
            raise ValueError("at most one second of audio per call")
        self._decode(self._g711, self._rx, payload, n)
        self._fax_rx(self._state, self._rx, n)

    def receive_missing(self, samples: int) -> None:
        """Audio that never arrived (a lost packet): let the modems know."""
        self._fillin(self._state, samples)

    def transmit_audio(self, samples: int) -> bytes:
        """The next ``samples`` samples to send as PCM."""
        if samples > MAX_FRAME:
            raise ValueError("at most one second of audio per call")
        made = self._fax_tx(self._state, self._tx, samples)
        if made < samples:
            self._pad(made, samples)
        out: bytes = self._tx_pcm[0 : samples << 1]
        return out

    def transmit_g711(self, samples: int) -> bytes:
        """The next ``samples`` samples to send as G.711 octets."""
        if samples > MAX_FRAME:
            raise ValueError("at most one second of audio per call")
        made = self._fax_tx(self._state, self._tx, samples)
        if made < samples:
            self._pad(made, samples)
        self._encode(self._g711, self._tx_g711, self._tx, samples)
        coded: bytes = self._tx_g711_bytes[0:samples]
        return coded

    def exchange_g711(self, payload: bytes | None, samples: int = 160) -> bytes:
        """One frame each way, the RTP hot path: feed the frame received
        (``None`` when it was lost, empty when none is due yet: the modems
        then hear nothing and lose nothing) and return the next frame to send."""
        if samples > MAX_FRAME or (payload is not None and len(payload) > MAX_FRAME):
            raise ValueError("at most one second of audio per call")
        if self._exchange is not None:
            rx_len = -samples if payload is None else len(payload)
            self._exchange(self._state, self._g711, self._tx, payload or b"", rx_len, self._tx_g711, samples)
            sent: bytes = self._tx_g711_bytes[0:samples]
            return sent
        if payload is None:
            self.receive_missing(samples)
        elif payload:
            self.receive_g711(payload)
        return self.transmit_g711(samples)

    def _pad(self, made: int, samples: int) -> None:
        # transmit-on-idle makes this rare: pad with silence
        ffi.memmove(self._tx + made, bytes((samples - made) * 2), (samples - made) * 2)

    def close(self) -> None:
        """Free the C state (idempotent). Results already read stay valid."""
        if self._state is not None:
            lib().fax_free(self._state)
            lib().g711_free(self._g711)
            self._state = self._t30 = None
            _freed()


class T38FaxSession(_Common):
    """A fax endpoint speaking T.38 (IFP packets), for UDPTL transports."""

    def __init__(
        self,
        *,
        calling: bool,
        options: FaxOptions | None = None,
        tx_file: Path | None = None,
        rx_file: Path | None = None,
        tag: str = "",
    ) -> None:
        super().__init__(calling, options or FaxOptions(), tx_file, rx_file, tag)
        self._outgoing: list[bytes] = []
        api = lib()

        @ffi.callback("t38_tx_packet_handler_t")
        def tx_packet(core: Any, user: Any, buf: Any, length: int, count: int) -> int:
            # ``count`` asks for repeats of indicator packets; UDPTL's
            # redundancy covers losses, so one copy is enough here.
            self._outgoing.append(ffi.buffer(buf, length)[:])
            return 0

        self._keep.append(tx_packet)
        self._state = api.t38_terminal_init(ffi.NULL, int(calling), tx_packet, ffi.NULL)
        if self._state == ffi.NULL:
            raise RuntimeError("spandsp t38_terminal_init failed")
        self._core = api.t38_terminal_get_t38_core_state(self._state)
        self._configure(
            api.t38_terminal_get_t30_state(self._state),
            [api.t38_terminal_get_logging_state(self._state), api.t38_core_get_logging_state(self._core)],
        )
        self._rx_ifp, self._send_timeout = api.t38_core_rx_ifp_packet, api.t38_terminal_send_timeout
        _born()

    def receive_ifp(self, packet: bytes, seq: int) -> None:
        self._rx_ifp(self._core, packet, len(packet), seq & 0xFFFF)

    def tick(self, samples: int) -> list[bytes]:
        """Advance the clock by ``samples`` (8 kHz); return the IFP packets to send."""
        self._send_timeout(self._state, samples)
        out, self._outgoing = self._outgoing, []
        return out

    def take_packets(self) -> list[bytes]:
        """Packets produced while handling received ones."""
        out, self._outgoing = self._outgoing, []
        return out

    def close(self) -> None:
        """Free the C state (idempotent)."""
        if self._state is not None:
            lib().t38_terminal_free(self._state)
            self._state = self._t30 = None
            _freed()
