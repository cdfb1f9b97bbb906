"""RTP for G.711 fax audio, sans-IO: packets in and out, no sockets, no clock.

``RtpSender`` numbers outgoing frames (sequence +1, timestamp +samples,
one SSRC). ``JitterBuffer`` puts received frames back in sequence order and
hands out one per 20 ms tick: a frame missing while later ones are there is
reported lost (``None``), so the fax modems are told of the gap instead of
being fed the next frame early; frames that arrive after their turn are
dropped and counted. Fax over G.711 cannot conceal losses the way voice
can, so the buffer is shallow (latency hurts T.30's timers more than an
occasional loss hurts ECM).

When nothing at all has arrived for the turn, the far end is late, not
lossy (its clock stalled, or a burst is on its way): the turn is held (an
empty frame: the modems hear nothing, lose nothing) for up to
``HOLD_TURNS``, and the frames play in order when they come; the delay
this adds is drained by playing one extra frame per tick to the receiver,
which needs contiguous samples, not real time. Declaring those turns lost
instead made every frame of the burst late: at 300 calls each stall of the
sending process (its sessions all reaching a page boundary in the same
tick) broke every call.

Fax modems do not survive packet loss: a 20 ms hole breaks the V.21 control
frame or the training it falls in, and at 3 % loss a call never gets past
phase B (tried: every run failed). Between two endpoints of ours the stream
therefore carries RFC 2198 redundancy, each packet repeating the previous
frames, as modem pass-through gateways do; the jitter buffer fills holes
from it. Asterisk's externalMedia speaks plain PCMU/PCMA, and on that leg
(a loopback socket on the same host) loss is not expected.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass, field

PCMU, PCMA = 0, 8
RED = 121  # RFC 2198 redundancy: a dynamic payload type, agreed by configuration
PAYLOAD_TYPES = {"ulaw": PCMU, "alaw": PCMA}
SILENCE = {PCMU: 0xFF, PCMA: 0xD5}  # the code for 0 in each law
_HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """A datagram that is not an RTP packet we can use."""


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


def parse(data: bytes) -> RtpPacket:
    """Decode one RTP packet (RFC 3550): CSRCs, header extension and padding
    are skipped; anything malformed raises ``RtpError``."""
    if len(data) < 12:
        raise RtpError(f"{len(data)} bytes: shorter than an RTP header")
    b0, b1, seq, timestamp, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpError(f"RTP version {b0 >> 6}, not 2")
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in words
        if len(data) < offset + 4:
            raise RtpError("truncated header extension")
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if b0 & 0x20:
        end -= data[-1]
    if end < offset:
        raise RtpError("header, extension or padding longer than the packet")
    return RtpPacket(b1 & 0x7F, seq, timestamp, ssrc, bool(b1 & 0x80), data[offset:end])


def red_payload(primary_type: int, frames: list[bytes], frame_samples: int) -> bytes:
    """An RFC 2198 payload: ``frames`` oldest first, the last one primary."""
    headers = bytearray()
    for age, frame in zip(range(len(frames) - 1, 0, -1), frames, strict=False):
        # F=1, block PT, 14-bit timestamp offset, 10-bit length
        offset_and_length_high = ((age * frame_samples) << 2) | (len(frame) >> 8)
        headers += struct.pack("!BHB", 0x80 | primary_type, offset_and_length_high, len(frame) & 0xFF)
    headers.append(primary_type)  # F=0: the primary block's header
    return bytes(headers) + b"".join(frames)


def red_blocks(payload: bytes) -> list[tuple[int, int, bytes]]:
    """Decode an RFC 2198 payload into ``(payload type, timestamp offset, data)``,
    oldest first, the primary last (offset 0)."""
    heads: list[tuple[int, int, int]] = []
    pos = 0
    while True:
        if pos >= len(payload):
            raise RtpError("RFC 2198: truncated block headers")
        if not payload[pos] & 0x80:
            heads.append((payload[pos] & 0x7F, 0, -1))
            pos += 1
            break
        if pos + 4 > len(payload):
            raise RtpError("RFC 2198: truncated block header")
        b0, word, b3 = struct.unpack_from("!BHB", payload, pos)
        heads.append((b0 & 0x7F, word >> 2, ((word & 0x3) << 8) | b3))
        pos += 4
    blocks = []
    for block_type, offset, length in heads:
        size = len(payload) - pos if length < 0 else length
        if pos + size > len(payload):
            raise RtpError("RFC 2198: block longer than the packet")
        blocks.append((block_type, offset, payload[pos : pos + size]))
        pos += size
    return blocks


@dataclass
class RtpSender:
    """Numbers outgoing frames of one stream; with ``redundancy`` > 0, each
    packet is RFC 2198 and repeats that many previous frames."""

    payload_type: int
    redundancy: int = 0
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    seq: int = field(default_factory=lambda: secrets.randbits(16))
    timestamp: int = field(default_factory=lambda: secrets.randbits(32))
    _first: bool = True
    _history: list[bytes] = field(default_factory=list)

    def build(self, frame: bytes) -> bytes:
        if self.redundancy:
            self._history = [*self._history[-self.redundancy :], frame]
            pt, payload = RED, red_payload(self.payload_type, self._history, len(frame))
        else:
            pt, payload = self.payload_type, frame
        header = _HEADER.pack(0x80, pt | (0x80 if self._first else 0), self.seq, self.timestamp, self.ssrc)
        self._first = False
        self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + len(frame)) & 0xFFFFFFFF  # G.711: one octet per sample
        return header + payload


@dataclass
class JitterStats:
    received: int = 0
    played: int = 0
    lost: int = 0  # turns with no frame
    late: int = 0  # arrived after their turn
    duplicates: int = 0
    reordered: int = 0  # arrived after a later frame, in time
    resets: int = 0  # new SSRC or a jump too large to be loss
    resyncs: int = 0  # turns re-anchored after a run of late frames
    skipped: int = 0  # frames dropped to catch up with a sender whose clock runs fast
    held: int = 0  # turns with nothing arrived yet: waited for, not lost
    drained: int = 0  # frames played in an extra turn, to take back the delay holding added
    recovered: int = 0  # frames filled in from RFC 2198 redundancy
    other_payloads: int = 0  # comfort noise, DTMF events...
    malformed: int = 0


LATE_RUN_RESYNC = 3  # consecutive late frames that mean our turns, not the network, are off
HOLD_TURNS = 25  # half a second: longer, the far end is not late but gone; report the loss
# A backlog the buffer drops down to its depth: frames beyond it, for this
# many turns in a row. Only a sender whose clock runs fast builds one that
# large. Our own clock stalling fills the buffer too, but then runs the
# missed turns back to back; a re-anchoring after late frames leaves a few
# frames of extra delay for the rest of the call. Both are kept: each
# dropped frame is a hole in the modem signal, and a hole breaks the fax
# (``bench fax`` lost every call at 200 with a limit of 8 frames).
MAX_BACKLOG = 25  # frames: half a second
BACKLOG_TURNS_SKIP = 25


def _ahead(a: int, b: int) -> int:
    """How far sequence number ``a`` is after ``b``, 16-bit wrap-aware (negative: before)."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


class JitterBuffer:
    """Frames in, one frame (or ``None`` for a loss) out per tick."""

    def __init__(self, payload_type: int, *, depth: int = 2, max_jump: int = 100, frame_samples: int = 160) -> None:
        self.payload_type = payload_type
        self.frame_samples = frame_samples
        self.depth = depth  # ticks to wait after the first frame, to absorb jitter
        self.max_jump = max_jump  # a bigger gap is a restart of the stream, not loss
        self.stats = JitterStats()
        self._frames: dict[int, bytes] = {}
        self._next: int | None = None
        self._newest: int | None = None
        self._ssrc: int | None = None
        self._wait = depth
        self._late_run = 0
        self._backlog_turns = 0
        self._held = 0
        # More than the depth waits in order: pop_extra has a frame to give.
        self.extra_due = False

    @property
    def started(self) -> bool:
        """True once the first frame has arrived and the buffer has filled."""
        return self._next is not None and self._wait == 0

    def push_datagram(self, data: bytes) -> None:
        # The common case, inline: a plain frame of our stream, next or
        # nearly so, no CSRC, extension or padding (what Asterisk sends).
        if len(data) > 12 and data[0] == 0x80 and (data[1] & 0x7F) == self.payload_type and self._next is not None:
            _, _, seq, _, ssrc = _HEADER.unpack_from(data)
            ahead = (seq - self._next) & 0xFFFF
            if ssrc == self._ssrc and ahead < self.max_jump and seq not in self._frames:
                stats = self.stats
                stats.received += 1
                self._late_run = 0
                newest = self._newest
                if newest is not None and (seq - newest) & 0xFFFF >= 0x8000:
                    stats.reordered += 1
                else:
                    self._newest = seq
                self._frames[seq] = data[12:]
                return
        try:
            packet = parse(data)
        except RtpError:
            self.stats.malformed += 1
            return
        self.push(packet)

    def push(self, packet: RtpPacket) -> None:
        if packet.payload_type == RED:
            self._push_red(packet)
            return
        if packet.payload_type != self.payload_type:
            self.stats.other_payloads += 1
            return
        self.stats.received += 1
        if self._ssrc != packet.ssrc or (
            self._next is not None and abs(_ahead(packet.seq, self._next)) > self.max_jump
        ):
            if self._ssrc is not None:
                self.stats.resets += 1
            self._ssrc, self._frames, self._next, self._newest = packet.ssrc, {}, packet.seq, packet.seq
        assert self._next is not None
        if _ahead(packet.seq, self._next) < 0:
            self.stats.late += 1
            self._late_run += 1
            if self._late_run < LATE_RUN_RESYNC:
                return
            # Frames keep arriving after their turn: our clock stalled and
            # then caught up, so the turns ran ahead of the stream. Without
            # this, every later frame would be "late" until the call ends.
            self.stats.resyncs += 1
            self._next = packet.seq
            self._frames = {seq: f for seq, f in self._frames.items() if _ahead(seq, packet.seq) >= 0}
        self._late_run = 0
        if packet.seq in self._frames:
            self.stats.duplicates += 1
            return
        if self._newest is not None and _ahead(packet.seq, self._newest) < 0:
            self.stats.reordered += 1
        else:
            self._newest = packet.seq
        self._frames[packet.seq] = packet.payload

    def _push_red(self, packet: RtpPacket) -> None:
        try:
            blocks = red_blocks(packet.payload)
        except RtpError:
            self.stats.malformed += 1
            return
        *older, (primary_type, _, primary) = blocks
        if primary_type != self.payload_type:
            self.stats.other_payloads += 1
            return
        self.push(RtpPacket(primary_type, packet.seq, packet.timestamp, packet.ssrc, packet.marker, primary))
        if self._next is None:
            return
        for block_type, offset, data in older:
            seq = (packet.seq - offset // self.frame_samples) & 0xFFFF
            if block_type == self.payload_type and _ahead(seq, self._next) >= 0 and seq not in self._frames:
                self._frames[seq] = data
                self.stats.recovered += 1

    def pop(self) -> bytes | None:
        """The frame whose turn it is, ``None`` if it is missing (or the
        stream has not started: check ``started`` first), or an empty frame
        while none has arrived (see the module's docstring)."""
        if self._next is None:
            return None
        if self._wait:
            self._wait -= 1
            return None
        if not self._frames and self._held < HOLD_TURNS:
            self._held += 1
            self.stats.held += 1
            return b""
        frame = self._frames.pop(self._next, None)
        self._next = (self._next + 1) & 0xFFFF
        if frame is None:
            self.stats.lost += 1
        else:
            self.stats.played += 1
            self._held = 0  # a hold ends with a frame, not with the first loss after it
        waiting = len(self._frames)
        self.extra_due = waiting > self.depth + 1
        if waiting <= MAX_BACKLOG:
            self._backlog_turns = 0
        else:
            self._backlog_turns += 1
            if self._backlog_turns >= BACKLOG_TURNS_SKIP:
                # The sender's clock runs ahead of ours: drop the oldest
                # frames down to the buffer's depth rather than let the
                # delay grow for the whole call.
                self._backlog_turns = 0
                newest = self._newest if self._newest is not None else self._next
                self._next = (newest - self.depth + 1) & 0xFFFF
                kept = {seq: f for seq, f in self._frames.items() if _ahead(seq, self._next) >= 0}
                self.stats.skipped += len(self._frames) - len(kept)
                self._frames = kept
        return frame

    def pop_extra(self) -> bytes | None:
        """One more frame this tick when more than the buffer's depth is
        waiting in order (the delay a hold added); else ``None``."""
        if len(self._frames) <= self.depth + 1 or self._next is None or self._wait:
            return None
        frame = self._frames.pop(self._next, None)
        if frame is None:
            return None
        self._next = (self._next + 1) & 0xFFFF
        self.stats.played += 1
        self.stats.drained += 1
        self.extra_due = len(self._frames) > self.depth + 1
        return frame
