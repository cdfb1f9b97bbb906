"""Malformed and truncated input to the AGI, AMI and ARI decoders: a clear
error of the decoder's own type, never another exception, never a hang."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalliope_tel.asterisk.agi.protocol import (
    AgiCommandError,
    AgiProtocolError,
    parse_env_line,
    parse_result_line,
    parse_script,
)
from kalliope_tel.asterisk.agi.server import read_environment
from kalliope_tel.asterisk.ami.protocol import AmiParser, AmiProtocolError
from kalliope_tel.asterisk.ari.errors import AriProtocolError
from kalliope_tel.asterisk.ari.models import ChannelDtmfReceived, Event, StasisStart, decode_event

pytestmark = pytest.mark.unit
FUZZ = settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])

REAL_AGI_REPLIES = [
    "200 result=1 (value)",
    "200 result=0 endpos=3404",
    "200 result= (timeout)",
    "200 result=-1 endpos=0",
    "510 Invalid or unknown command",
    "511 Command Not Permitted on a dead channel or intercept routine",
]
REAL_AMI = (
    b"Asterisk Call Manager/11.0.0\r\n"
    b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
    b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
    b"Response: Success\r\nActionID: 2\r\nMessage: Command output follows\r\n"
    b"Output: Asterisk 22.10.1\r\nOutput: second line\r\n\r\n"
)
REAL_ARI = json.dumps(
    {
        "type": "ChannelDtmfReceived",
        "digit": "1",
        "duration_ms": 100,
        "application": "lab",
        "channel": {"id": "1700000000.1", "name": "Local/s@phone-00000000;1", "state": "Up"},
    }
)


# ------------------------------------------------------------------ AGI
def test_agi_real_replies() -> None:
    assert parse_result_line(REAL_AGI_REPLIES[0]).data == "value"
    assert parse_result_line(REAL_AGI_REPLIES[1]).extra == {"endpos": "3404"}
    timeout = parse_result_line(REAL_AGI_REPLIES[2])
    assert timeout.result == "" and timeout.data == "timeout" and timeout.value == -1
    with pytest.raises(AgiCommandError) as err:
        parse_result_line(REAL_AGI_REPLIES[5])
    assert err.value.code == 511
    assert parse_script({"agi_network_script": "echo?x=1&room=101"}) == (
        "echo",
        {"x": "1", "room": "101"},
    )
    assert parse_script({"agi_request": "agi://h:4573/hotel/clean?d=1"}) == (
        "hotel/clean",
        {"d": "1"},
    )


@FUZZ
@given(st.one_of(st.text(max_size=200), st.sampled_from(REAL_AGI_REPLIES).map(lambda s: s[: len(s) // 2])))
def test_agi_reply_parser_fails_cleanly(line: str) -> None:
    with contextlib.suppress(AgiProtocolError, AgiCommandError):
        parse_result_line(line)


@FUZZ
@given(st.text(max_size=200))
def test_agi_env_line_parser_fails_cleanly(line: str) -> None:
    try:
        key, _ = parse_env_line(line)
        assert key.startswith("agi_")
    except AgiProtocolError:
        pass


@FUZZ
@given(st.binary(max_size=2000))
def test_agi_environment_reader_never_hangs(data: bytes) -> None:
    async def read() -> None:
        reader = asyncio.StreamReader(limit=8192)
        reader.feed_data(data)
        reader.feed_eof()
        try:
            env = await asyncio.wait_for(read_environment(reader), 1.0)
            assert all(k.startswith("agi_") for k in env)
        except AgiProtocolError:
            pass  # refused with its reason; anything else (a ValueError, a hang) fails

    asyncio.run(read())


@pytest.mark.parametrize("size", [8191, 8193, 100_000])
def test_an_agi_block_over_the_readers_limit_is_a_protocol_error(size: int) -> None:
    """asyncio raises LimitOverrunError (a ValueError) past the limit; the
    reader turns it into the protocol error with the reason."""

    async def read() -> None:
        reader = asyncio.StreamReader(limit=8192)
        reader.feed_data(b"agi_x: " + b"y" * size + b"\n\n")
        reader.feed_eof()
        with pytest.raises(AgiProtocolError, match="longer than"):
            await asyncio.wait_for(read_environment(reader), 1.0)

    asyncio.run(read())


# ------------------------------------------------------------------ AMI
def test_ami_real_stream_in_any_chunking() -> None:
    for size in (1, 2, 7, 64, len(REAL_AMI)):
        parser = AmiParser()
        messages = []
        for i in range(0, len(REAL_AMI), size):
            messages += parser.feed(REAL_AMI[i : i + size])
        assert parser.banner == "Asterisk Call Manager/11.0.0"
        assert [m.name for m in messages] == ["Success", "FullyBooted", "Success"]
        assert messages[2].get_all("Output") == ["Asterisk 22.10.1", "second line"]


@FUZZ
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=64))
def test_ami_parser_fails_cleanly(noise: bytes, chunk: int) -> None:
    for stream in (noise, REAL_AMI[: len(noise) % len(REAL_AMI)] + noise):
        parser = AmiParser()
        try:
            for i in range(0, len(stream), chunk):
                parser.feed(stream[i : i + chunk])
        except AmiProtocolError:
            pass


def test_ami_parser_bounds_a_message_without_end() -> None:
    parser = AmiParser()
    parser.feed(b"Asterisk Call Manager/11.0.0\r\n")
    with pytest.raises(AmiProtocolError, match="longer than"):
        for _ in range(2000):
            parser.feed(b"Output: " + b"x" * 1000 + b"\r\n")


# ------------------------------------------------------------------ ARI
def test_ari_real_event_decodes_typed() -> None:
    event = decode_event(REAL_ARI)
    assert isinstance(event, ChannelDtmfReceived)
    assert event.digit == "1" and event.channel_id == "1700000000.1"
    unknown = decode_event('{"type":"ChannelTalkingStarted","channel":{"id":"x.1"}}')
    assert type(unknown) is Event and unknown.channel_id == "x.1"


def test_ari_decoder_fast_path_agrees_with_the_slow_one() -> None:
    # 'type' first (how Asterisk writes it) takes the one-pass path; elsewhere,
    # or given twice, the full parse decides, and both give the same event.
    moved = json.dumps({"digit": "1", "channel": {"id": "x.1"}, "type": "ChannelDtmfReceived"})
    first = json.dumps({"type": "ChannelDtmfReceived", "digit": "1", "channel": {"id": "x.1"}})
    assert decode_event(moved) == decode_event(first) == decode_event(first.encode())
    assert isinstance(decode_event(first), ChannelDtmfReceived)
    twice = '{"type":"ChannelDtmfReceived","digit":"1","channel":{"id":"x.1"},"type":"StasisEnd"}'
    assert decode_event(twice).type == "StasisEnd"  # json.loads keeps the last, as before
    with pytest.raises(AriProtocolError, match="malformed ChannelDtmfReceived"):
        decode_event('{"type":"ChannelDtmfReceived","channel":{"id":"x.1"}}')  # no digit


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300),
        st.just(REAL_ARI).flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),
        st.builds(
            lambda t, body: json.dumps({"type": t, **body}) if isinstance(body, dict) else json.dumps(body),
            st.sampled_from(["StasisStart", "ChannelDtmfReceived", "Dial", "PlaybackFinished", "X"]),
            json_values,
        ),
    )
)
def test_ari_decoder_fails_cleanly(raw: str | bytes) -> None:
    try:
        event = decode_event(raw)
    except AriProtocolError:
        return
    assert isinstance(event.type, str)
    if isinstance(event, StasisStart):
        assert isinstance(event.channel.id, str)


def test_ari_decoder_deep_nesting() -> None:
    with pytest.raises(AriProtocolError):
        decode_event("[" * 100000 + "]" * 100000)
