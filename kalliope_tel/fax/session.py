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

from kalliope_tel.fax.spandsp import T4_1D, T4_2D, T6, T30_ERR_OK, V17, V27TER, V29, c_text, completion_text, ffi, lib

SAMPLE_RATE = 8000


@dataclass(frozen=True)
class FaxOptions:
    local_ident: str = ""  # up to 20 characters
    header: str = ""  # page header line, up to 50 characters
    ecm: bool = True
    modems: int = V17 | V29 | V27TER

    def __post_init__(self) -> None:
        if len(self.local_ident) > 20:
            raise ValueError("local station id: at most 20 characters")
        if len(self.header) > 50:
            raise ValueError("page header: at most 50 characters")


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


@dataclass
class _Common:
    calling: bool
    options: FaxOptions
    tx_file: Path | None
    rx_file: Path | None
    _events: list[FaxEvent] = field(default_factory=list)
    result: PhaseE | None = None
    _keep: list[Any] = field(default_factory=list)  # cffi callbacks/handles C may call

    def _configure(self, t30: Any) -> None:
        o = self.options
        if o.local_ident:
            lib().t30_set_tx_ident(t30, o.local_ident.encode())
        if o.header:
            lib().t30_set_tx_page_header_info(t30, o.header.encode())
        lib().t30_set_ecm_capability(t30, int(o.ecm))
        lib().t30_set_supported_modems(t30, o.modems)
        # T.6 exists only with ECM.
        lib().t30_set_supported_compressions(t30, T4_1D | T4_2D | (T6 if o.ecm else 0))
        if self.tx_file is not None:
            lib().t30_set_tx_file(t30, str(self.tx_file).encode(), -1, -1)
        if self.rx_file is not None:
            lib().t30_set_rx_file(t30, str(self.rx_file).encode(), -1)
        handle = ffi.new_handle(self)

        @ffi.callback("t30_phase_b_handler_t")
        def phase_b(s: Any, user: Any, result: int) -> int:
            stats = self._stats(s)
            remote = c_text(lib().t30_get_rx_ident(s))  # "" when the far end sent none
            self._events.append(PhaseB(remote, stats.bit_rate, bool(stats.error_correcting_mode)))
            return 0

        @ffi.callback("t30_phase_d_handler_t")
        def phase_d(s: Any, user: Any, result: int) -> int:
            stats = self._stats(s)
            self._events.append(PageDone(stats.pages_tx, stats.pages_rx))
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

        lib().t30_set_phase_b_handler(t30, phase_b, handle)
        lib().t30_set_phase_d_handler(t30, phase_d, handle)
        lib().t30_set_phase_e_handler(t30, phase_e, handle)
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
    def done(self) -> bool:
        return self.result is not None


class AudioFaxSession(_Common):
    """A fax endpoint over G.711-carried audio (8 kHz 16-bit PCM in and out)."""

    def __init__(
        self,
        *,
        calling: bool,
        options: FaxOptions | None = None,
        tx_file: Path | None = None,
        rx_file: Path | None = None,
    ) -> None:
        super().__init__(calling, options or FaxOptions(), tx_file, rx_file)
        self._state = lib().fax_init(ffi.NULL, int(calling))
        if self._state == ffi.NULL:
            raise RuntimeError("spandsp fax_init failed")
        # Keep sending silence between signals, so every tx frame is full.
        lib().fax_set_transmit_on_idle(self._state, 1)
        self._configure(lib().fax_get_t30_state(self._state))
        self._tx = ffi.new("int16_t[]", 8000)

    def receive_audio(self, pcm: bytes) -> None:
        """Feed received audio: little-endian int16 samples."""
        n = len(pcm) // 2
        if n:
            buf = ffi.from_buffer("int16_t[]", pcm)
            lib().fax_rx(self._state, buf, n)

    def transmit_audio(self, samples: int) -> bytes:
        """The next ``samples`` samples to send (silence-padded)."""
        if samples > 8000:
            raise ValueError("at most one second of audio per call")
        made = int(lib().fax_tx(self._state, self._tx, samples))
        data: bytes = ffi.buffer(self._tx, made * 2)[:]
        return data + b"\x00\x00" * (samples - made)

    def close(self) -> None:
        if self._state is not None:
            lib().fax_free(self._state)
            self._state = None


class T38FaxSession(_Common):
    """A fax endpoint speaking T.38 (IFP packets), for UDPTL transports."""

    def __init__(
        self,
        *,
        calling: bool,
        options: FaxOptions | None = None,
        tx_file: Path | None = None,
        rx_file: Path | None = None,
    ) -> None:
        super().__init__(calling, options or FaxOptions(), tx_file, rx_file)
        self._outgoing: list[bytes] = []

        @ffi.callback("t38_tx_packet_handler_t")
        def tx_packet(core: Any, user: Any, buf: Any, length: int, count: int) -> int:
            # ``count`` asks for repeats of indicator packets; the UDPTL
            # transport's redundancy covers losses, so one copy is enough here.
            self._outgoing.append(bytes(ffi.buffer(buf, length)))
            return 0

        self._keep.append(tx_packet)
        self._state = lib().t38_terminal_init(ffi.NULL, int(calling), tx_packet, ffi.NULL)
        if self._state == ffi.NULL:
            raise RuntimeError("spandsp t38_terminal_init failed")
        self._core = lib().t38_terminal_get_t38_core_state(self._state)
        self._configure(lib().t38_terminal_get_t30_state(self._state))

    def receive_ifp(self, packet: bytes, seq: int) -> None:
        lib().t38_core_rx_ifp_packet(self._core, packet, len(packet), seq & 0xFFFF)

    def tick(self, samples: int) -> list[bytes]:
        """Advance the clock by ``samples`` (8 kHz); return the IFP packets to send."""
        lib().t38_terminal_send_timeout(self._state, samples)
        out, self._outgoing = self._outgoing, []
        return out

    def take_packets(self) -> list[bytes]:
        """Packets produced while handling received ones."""
        out, self._outgoing = self._outgoing, []
        return out

    def close(self) -> None:
        if self._state is not None:
            lib().t38_terminal_free(self._state)
            self._state = None
