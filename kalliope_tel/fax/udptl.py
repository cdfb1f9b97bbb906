"""UDPTL (ITU-T T.38 annex, the transport of IFP packets), sans-IO.

A UDPTL packet is ``seq`` (16 bits), the primary IFP packet as an ASN.1 PER
open type, then the error recovery: either the previous IFP packets again
(redundancy: ``secondary[0]`` is seq-1, ``secondary[1]`` seq-2, ...) or
forward error correction (parity over spans of earlier packets). We send
redundancy (what Asterisk and most gateways use by default) and, on
receipt, recover missing packets from the secondaries of the next one to
arrive. FEC packets are decoded (their primary IFP is used) but not
repaired from: Asterisk only sends FEC when the far end asks for it in SDP,
and we never ask.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MAX_LENGTH = 0x3FFF  # the largest unfragmented PER length; IFP packets are far smaller


class UdptlError(ValueError):
    """A datagram that is not a UDPTL packet we can decode."""


def _encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= MAX_LENGTH:
        return bytes([0x80 | (n >> 8), n & 0xFF])
    raise UdptlError(f"{n} octets: larger than a UDPTL open type without fragmentation")


def _encode_open_type(data: bytes) -> bytes:
    if not data:  # X.691 10.1: an empty open type is sent as one zero octet
        data = b"\x00"
    return _encode_length(len(data)) + data


def _decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise UdptlError("truncated: length expected")
    first = buf[pos]
    if first & 0x80 == 0:
        return first, pos + 1
    if first & 0x40 == 0:
        if pos + 1 >= len(buf):
            raise UdptlError("truncated: two-octet length")
        return ((first & 0x3F) << 8) | buf[pos + 1], pos + 2
    raise UdptlError("fragmented length: not used for IFP packets")


def _decode_open_type(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _decode_length(buf, pos)
    if pos + n > len(buf):
        raise UdptlError(f"truncated: {n} octets announced, {len(buf) - pos} left")
    return buf[pos : pos + n], pos + n


@dataclass(frozen=True)
class UdptlPacket:
    seq: int
    primary: bytes
    secondaries: tuple[bytes, ...]  # newest first: seq-1, seq-2, ...


def decode(buf: bytes) -> UdptlPacket:
    if len(buf) < 3:
        raise UdptlError(f"{len(buf)} bytes: too short for UDPTL")
    seq = (buf[0] << 8) | buf[1]
    primary, pos = _decode_open_type(buf, 2)
    if pos >= len(buf):
        raise UdptlError("truncated: error recovery missing")
    kind, pos = buf[pos], pos + 1
    secondaries: list[bytes] = []
    if kind & 0x80 == 0:
        count, pos = _decode_length(buf, pos)
        for _ in range(count):
            packet, pos = _decode_open_type(buf, pos)
            secondaries.append(packet)
    else:  # FEC: span and entries, then the parity entries; checked, not used
        if pos + 3 > len(buf) or buf[pos] != 1:
            raise UdptlError("malformed FEC header")
        entries, pos = buf[pos + 2], pos + 3
        for _ in range(entries):
            _, pos = _decode_open_type(buf, pos)
    return UdptlPacket(seq, primary, tuple(secondaries))


def encode(seq: int, primary: bytes, secondaries: list[bytes] | tuple[bytes, ...] = ()) -> bytes:
    out = bytearray(((seq >> 8) & 0xFF, seq & 0xFF))
    out += _encode_open_type(primary)
    out.append(0x00)  # error recovery: secondary IFP packets
    out += _encode_length(len(secondaries))
    for packet in secondaries:
        out += _encode_open_type(packet)
    return bytes(out)


class UdptlEncoder:
    """Outgoing IFP packets as UDPTL packets, each carrying the previous
    ``redundancy`` IFP packets again."""

    def __init__(self, redundancy: int = 3, first_seq: int = 0) -> None:
        self.seq = first_seq & 0xFFFF
        self._history: deque[bytes] = deque(maxlen=redundancy)

    def encode(self, ifp: bytes) -> bytes:
        packet = encode(self.seq, ifp, tuple(reversed(self._history)))
        self._history.append(ifp)
        self.seq = (self.seq + 1) & 0xFFFF
        return packet


@dataclass
class UdptlStats:
    received: int = 0
    delivered: int = 0
    recovered: int = 0  # delivered from a later packet's redundancy
    lost: int = 0  # gaps redundancy could not fill
    stale: int = 0  # duplicates and packets older than what was delivered
    malformed: int = 0


class UdptlDecoder:
    """UDPTL datagrams in, IFP packets out in sequence order, ``(seq, ifp)``,
    with gaps filled from redundancy where it reaches."""

    def __init__(self) -> None:
        self.stats = UdptlStats()
        self._expected: int | None = None

    def feed(self, datagram: bytes) -> list[tuple[int, bytes]]:
        try:
            packet = decode(datagram)
        except UdptlError:
            self.stats.malformed += 1
            return []
        self.stats.received += 1
        out: list[tuple[int, bytes]] = []
        if self._expected is not None:
            gap = (packet.seq - self._expected) & 0xFFFF
            if gap >= 0x8000:  # older than what was delivered: a duplicate or too late
                self.stats.stale += 1
                return []
            reach = min(gap, len(packet.secondaries))
            self.stats.lost += gap - reach
            for missing in range(reach, 0, -1):  # oldest first
                out.append(((packet.seq - missing) & 0xFFFF, packet.secondaries[missing - 1]))
            self.stats.recovered += reach
        out.append((packet.seq, packet.primary))
        self._expected = (packet.seq + 1) & 0xFFFF
        self.stats.delivered += len(out)
        return out
