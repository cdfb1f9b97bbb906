"""The FIAS codec: records survive the round trip, the framing and field
syntax are enforced, and 10,000 fuzzed and malformed inputs never raise:
each is decoded or reported as malformed, and a good record after them is
still read."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalliope_tel.pms.fias import ETX, MAX_RECORD, STX, Decoder, FiasError, Malformed, Record, encode, parse

KINDS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)
IDS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789#", min_size=2, max_size=2)
VALUES = st.text(st.characters(codec="cp1252", exclude_characters="|", exclude_categories=("Cc",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(KINDS, st.dictionaries(IDS, VALUES, max_size=8))
def test_a_record_survives_the_round_trip(kind: str, fields: dict[str, str]) -> None:
    record = Record(kind, fields)
    assert Decoder().feed(encode(record)) == [record]


def test_records_of_a_session_in_pieces() -> None:
    data = encode(Record("LS", {"DA": "261207", "TI": "140500"})) + b"\r\n" + encode(Record("LE"))
    decoder = Decoder()
    out = [r for i in range(0, len(data), 3) for r in decoder.feed(data[i : i + 3])]
    assert out == [Record("LS", {"DA": "261207", "TI": "140500"}), Record("LE")]
    assert parse(b"GI|RN101|GNRossi|") == Record("GI", {"RN": "101", "GN": "Rossi"})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"g1|RN1|", "record type"),
        (b"GI|RN101", "end with |"),
        (b"GI|rn101|", "field id"),
        (b"GI|RN1\x07|", "control character"),
        (b"GI|RN1|RN2|", "twice"),
    ],
)
def test_malformed_records_are_named(body: bytes, reason: str) -> None:
    found = parse(body)
    assert isinstance(found, Malformed) and reason in found.reason


def test_framing_faults_and_the_size_bound() -> None:
    decoder = Decoder()
    out = decoder.feed(b"junk" + STX + b"GI|RN1|" + STX + b"GO|RN1|" + ETX + STX + b"A" * (MAX_RECORD + 10) + ETX)
    reasons = [r.reason if isinstance(r, Malformed) else r.kind for r in out]
    assert reasons[:3] == ["bytes outside a record", "STX inside a record (no ETX)", "GO"]
    assert any("longer than" in r for r in reasons)
    assert decoder.feed(encode(Record("LA"))) == [Record("LA")]  # and it reads on


def test_the_encoder_refuses_what_would_break_the_framing() -> None:
    for record in (Record("GI", {"GN": "a|b"}), Record("GI", {"GN": "a\x03"}), Record("gi"), Record("GI", {"G": "x"})):
        with pytest.raises(FiasError):
            encode(record)
    with pytest.raises(FiasError):
        encode(Record("GI", {"GN": "名前"}))  # not in CP-1252


def test_ten_thousand_fuzzed_inputs_never_raise() -> None:
    rng = random.Random(20261207)
    good = encode(Record("GI", {"RN": "101", "GN": "Rossi"}))
    decoder = Decoder()
    seen = 0
    for n in range(10_000):
        size = rng.randint(0, 300)
        chunk = bytes(rng.choice((2, 3, 124, 65, 71, 73, 0, 255, rng.randint(0, 255))) for _ in range(size))
        if n % 7 == 0:  # a real record cut and spliced into noise
            cut = rng.randint(0, len(good))
            chunk = good[:cut] + chunk + good[cut:]
        for item in decoder.feed(chunk):
            assert isinstance(item, (Record, Malformed))
            seen += 1
    decoder.feed(ETX)  # close whatever frame the noise left open
    assert decoder.feed(good) == [Record("GI", {"RN": "101", "GN": "Rossi"})]
    assert seen > 1_000


def test_the_codec_and_the_tests_independent_pms_read_each_other() -> None:
    from tests.pms_peer import frame, unframe

    ours = encode(Record("PS", {"RN": "101", "TA": "1250", "P#": "7"}))
    assert unframe(ours) == ([("PS", {"RN": "101", "TA": "1250", "P#": "7"})], b"")
    theirs = frame("GI", RN="101", GN="Rossì", G_="55")
    assert Decoder().feed(theirs) == [Record("GI", {"RN": "101", "GN": "Rossì", "G#": "55"})]
