"""RTP (with RFC 2198) and UDPTL codecs and the jitter buffer, sans-IO."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalliope_tel.fax import rtp, udptl

pytestmark = pytest.mark.unit
frames = st.binary(min_size=1, max_size=400)


@given(st.lists(frames, min_size=1, max_size=4))
def test_red_payload_round_trip(blocks: list[bytes]) -> None:
    decoded = rtp.red_blocks(rtp.red_payload(rtp.PCMU, blocks, 160))
    assert [data for _, _, data in decoded] == blocks
    assert [offset for _, offset, _ in decoded] == [160 * age for age in range(len(blocks) - 1, -1, -1)]


@given(st.binary(max_size=64))
def test_garbage_never_crashes_the_decoders(data: bytes) -> None:
    for decode in (rtp.parse, udptl.decode, rtp.red_blocks):
        with contextlib.suppress(rtp.RtpError, udptl.UdptlError):
            decode(data)


def test_rtp_parse_skips_csrc_extension_and_padding() -> None:
    header = bytes([0x80 | 0x20 | 0x10 | 1, 0x80 | 8]) + (513).to_bytes(2, "big") + (1000).to_bytes(4, "big")
    header += (42).to_bytes(4, "big") + b"CSRC" + b"\xbe\xde\x00\x01" + b"EXT!"
    packet = rtp.parse(header + b"payload" + b"\x00\x00\x03")
    assert (packet.payload_type, packet.seq, packet.timestamp, packet.ssrc, packet.marker) == (8, 513, 1000, 42, True)
    assert packet.payload == b"payload"
    with pytest.raises(rtp.RtpError, match="version"):
        rtp.parse(b"\x40" + bytes(11))


def _stream(sender: rtp.RtpSender, n: int) -> list[bytes]:
    return [sender.build(bytes([i]) * 160) for i in range(n)]


def test_jitter_buffer_reorders_reports_loss_and_drops_late_frames() -> None:
    sender = rtp.RtpSender(rtp.PCMU, seq=65534)  # wraps through 0
    packets = _stream(sender, 6)
    jb = rtp.JitterBuffer(rtp.PCMU, depth=2)
    for i in (0, 2, 1, 4):  # 3 missing, 1 and 2 swapped
        jb.push_datagram(packets[i])
    assert jb.pop() is None and jb.pop() is None and jb.started  # filling: two ticks
    out = [jb.pop() for _ in range(4)]
    assert [f[0] if f else None for f in out] == [0, 1, 2, None]
    jb.push_datagram(packets[3])  # its turn has passed
    jb.push_datagram(packets[4])  # duplicate
    assert (jb.pop() or b"\xff")[0] == 4
    assert (jb.stats.lost, jb.stats.late, jb.stats.duplicates, jb.stats.reordered) == (1, 1, 1, 1)


def test_red_stream_fills_a_lost_frame() -> None:
    sender = rtp.RtpSender(rtp.PCMA, redundancy=2)
    packets = _stream(sender, 5)
    jb = rtp.JitterBuffer(rtp.PCMA, depth=1)
    for i in (0, 2, 3, 4):  # frame 1 lost; packet 2 carries it again
        jb.push_datagram(packets[i])
    jb.pop()
    assert [(jb.pop() or b"?")[0] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert jb.stats.recovered >= 1 and jb.stats.lost == 0


def test_new_ssrc_restarts_the_buffer() -> None:
    jb = rtp.JitterBuffer(rtp.PCMU, depth=0)
    jb.push_datagram(rtp.RtpSender(rtp.PCMU, ssrc=1, seq=100).build(b"a" * 160))
    assert jb.pop() == b"a" * 160
    jb.push_datagram(rtp.RtpSender(rtp.PCMU, ssrc=2, seq=9).build(b"b" * 160))  # Asterisk restarted
    assert jb.pop() == b"b" * 160 and jb.stats.resets == 1


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=20), st.integers(0, 0xFFFF))
def test_udptl_round_trip_in_order(ifps: list[bytes], first: int) -> None:
    encoder, decoder = udptl.UdptlEncoder(3, first_seq=first), udptl.UdptlDecoder()
    got = [item for ifp in ifps for item in decoder.feed(encoder.encode(ifp))]
    assert [ifp or b"\x00" for ifp in ifps] == [ifp for _, ifp in got]  # empty IFP: one zero octet (X.691)
    assert [seq for seq, _ in got] == [(first + i) & 0xFFFF for i in range(len(ifps))]


def test_udptl_recovers_from_redundancy_and_counts_what_it_cannot() -> None:
    encoder, decoder = udptl.UdptlEncoder(2), udptl.UdptlDecoder()
    packets = [encoder.encode(bytes([i]) * 10) for i in range(8)]
    got = []
    for i in (0, 2, 6, 5, 7):  # 1 recovered from 2; 3 lost; 4, 5 recovered from 6; late 5 stale
        got += decoder.feed(packets[i])
    assert [seq for seq, _ in got] == [0, 1, 2, 4, 5, 6, 7]
    assert all(ifp == bytes([seq]) * 10 for seq, ifp in got)
    stats = decoder.stats
    assert (stats.recovered, stats.lost, stats.stale) == (3, 1, 1)


def test_udptl_matches_asterisks_layout() -> None:
    # seq 0x0102, primary "AB", redundancy of two: newest secondary first.
    assert udptl.encode(0x0102, b"AB", [b"C", b"DE"]) == bytes.fromhex("0102 02 4142 00 02 01 43 02 4445")
    # A 200-octet IFP takes a two-octet length determinant.
    assert udptl.encode(1, b"x" * 200)[2:4] == bytes([0x80, 200])


def test_jitter_buffer_holds_turns_while_nothing_has_arrived() -> None:
    """The far end's clock stalls (or ours runs ten turns back to back while
    its frames are still on the way): nothing is there, so the turns are
    held, not lost, and every frame plays in order when it comes."""
    sender = rtp.RtpSender(rtp.PCMU)
    jb = rtp.JitterBuffer(rtp.PCMU, depth=0)
    packets = _stream(sender, 40)
    jb.push_datagram(packets[0])
    assert jb.pop() is not None
    assert [jb.pop() for _ in range(10)] == [b""] * 10  # held: empty, not None
    got = []
    for packet in packets[1:30]:  # the stream comes again at its own pace
        jb.push_datagram(packet)
        got.append(jb.pop())
    assert got == [bytes([k]) * 160 for k in range(1, 30)]
    assert (jb.stats.held, jb.stats.lost, jb.stats.late, jb.stats.resyncs) == (10, 0, 0, 0)


def test_jitter_buffer_resyncs_after_a_silence_longer_than_a_hold() -> None:
    """Past ``HOLD_TURNS`` the far end is not late but gone: the turns are
    lost; if its frames then come after all, they are late, and the buffer
    follows the stream again after three rather than drop it for good."""
    sender = rtp.RtpSender(rtp.PCMU)
    jb = rtp.JitterBuffer(rtp.PCMU, depth=0)
    packets = _stream(sender, 60)
    jb.push_datagram(packets[0])
    assert jb.pop() is not None
    for _ in range(rtp.HOLD_TURNS + 10):
        jb.pop()
    assert (jb.stats.held, jb.stats.lost) == (rtp.HOLD_TURNS, 10)
    got = []
    for packet in packets[1:40]:
        jb.push_datagram(packet)
        got.append(jb.pop())
    assert jb.stats.resyncs == 1 and jb.stats.late == 3
    assert all(frame for frame in got[3:])  # played again after three


def test_jitter_buffer_drains_the_delay_a_hold_added() -> None:
    """After a hold the frames that were late wait in the buffer: one extra
    frame a tick goes to the receiver until only the depth is left."""
    sender = rtp.RtpSender(rtp.PCMU)
    jb = rtp.JitterBuffer(rtp.PCMU, depth=2)
    packets = _stream(sender, 20)
    jb.push_datagram(packets[0])
    jb.pop()
    jb.pop()
    assert jb.pop() == bytes([0]) * 160
    for packet in packets[1:11]:  # ten frames at once, after a stall
        jb.push_datagram(packet)
    played = []
    for _ in range(6):
        played.append(jb.pop())
        while (extra := jb.pop_extra()) is not None:
            played.append(extra)
            break  # one extra per tick
    assert played == [bytes([k]) * 160 for k in range(1, len(played) + 1)]
    assert jb.stats.drained > 0 and len(jb._frames) <= jb.depth + 1


def test_jitter_buffer_keeps_a_backlog_our_clock_catches_up_with() -> None:
    """Our clock stalled for 220 ms: eleven frames wait, and the clock runs
    the missed turns back to back. Every frame must play: the backlog rule
    must not take our own stall for a sender whose clock runs fast."""
    sender = rtp.RtpSender(rtp.PCMU)
    jb = rtp.JitterBuffer(rtp.PCMU, depth=2)
    packets = _stream(sender, 30)
    jb.push_datagram(packets[0])
    for _ in range(2):
        jb.pop()  # the buffer fills
    played = [jb.pop()]
    for packet in packets[1:12]:  # the stall: eleven frames arrive, no turn runs
        jb.push_datagram(packet)
    played += [jb.pop() for _ in range(11)]  # the catch-up burst
    for packet in packets[12:]:
        jb.push_datagram(packet)
        played.append(jb.pop())
    assert all(frame is not None for frame in played)
    assert (jb.stats.played, jb.stats.lost, jb.stats.skipped) == (30, 0, 0)


def test_jitter_buffer_drops_down_to_its_depth_when_the_sender_runs_fast() -> None:
    """A sender whose clock runs ahead keeps a backlog turn after turn: the
    buffer drops the oldest frames down to its depth, and counts them."""
    sender = rtp.RtpSender(rtp.PCMU)
    jb = rtp.JitterBuffer(rtp.PCMU, depth=2)
    packets = _stream(sender, 200)
    for packet in packets[: rtp.MAX_BACKLOG + 4]:
        jb.push_datagram(packet)
    jb.pop()
    jb.pop()
    sent = rtp.MAX_BACKLOG + 4
    for _ in range(rtp.BACKLOG_TURNS_SKIP):  # two frames in per turn, one out
        jb.push_datagram(packets[sent])
        jb.push_datagram(packets[sent + 1])
        sent += 2
        jb.pop()
    assert jb.stats.skipped > 0 and jb.stats.lost == 0
    assert len(jb._frames) <= jb.depth
    assert jb.pop() is not None  # and it plays on from there
