"""Two fax sessions joined in memory, 20 ms at a time (h11's tests/helpers
idea): the loopback tests and ``bench fax`` drive sessions through these."""

from __future__ import annotations

from kalliope_tel.fax.session import AudioFaxSession, T38FaxSession

FRAME = 160  # 20 ms at 8 kHz


def run_audio(a: AudioFaxSession, b: AudioFaxSession, *, max_seconds: float = 600) -> float:
    """Exchange audio until both ends reach phase E; return simulated seconds."""
    simulated, limit = 0, max_seconds * 8000
    a_tx, a_rx, b_tx, b_rx = a.transmit_audio, a.receive_audio, b.transmit_audio, b.receive_audio
    while (a.result is None or b.result is None) and simulated < limit:
        b_rx(a_tx(FRAME))
        a_rx(b_tx(FRAME))
        simulated += FRAME
    return simulated / 8000


def run_g711(a: AudioFaxSession, b: AudioFaxSession, *, max_seconds: float = 600) -> float:
    """As ``run_audio``, coded to G.711 and back on the way (what RTP carries),
    one frame each way per step through the RTP hot path."""
    simulated, limit = 0, max_seconds * 8000
    a_x, b_x = a.exchange_g711, b.exchange_g711
    to_a: bytes | None = None
    while (a.result is None or b.result is None) and simulated < limit:
        to_a = b_x(a_x(to_a))
        simulated += FRAME
    return simulated / 8000


def run_t38(a: T38FaxSession, b: T38FaxSession, *, max_seconds: float = 600) -> float:
    """Exchange IFP packets (sequence-numbered) until both ends reach phase E."""
    seq_a = seq_b = simulated = 0
    while not (a.done and b.done) and simulated < max_seconds * 8000:
        for packet in a.tick(FRAME) + a.take_packets():
            b.receive_ifp(packet, seq_a)
            seq_a += 1
        for packet in b.tick(FRAME) + b.take_packets():
            a.receive_ifp(packet, seq_b)
            seq_b += 1
        simulated += FRAME
    return simulated / 8000
