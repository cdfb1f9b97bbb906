"""FIAS records, sans-IO: bytes in, records out, and the reverse.

FIAS (Fidelio Interface Application Specification) frames each record
between STX (0x02) and ETX (0x03). A record is its two-character type,
then fields, each ``|`` followed by a two-character field id and its value,
and a closing ``|``: ``\\x02GI|RN101|GNRossi|DA261207|TI140500|\\x03``.

The decoder is strict and bounded: a record longer than ``MAX_RECORD``
bytes, bytes outside a frame, an unknown shape of type or field id, a
control character inside a value, or a field given twice are *malformed*:
reported as ``Malformed`` (with the reason and the bytes, cut), never an
exception, and the decoder goes on with the next STX. Values are decoded as
CP-1252, the code page PMSs use for FIAS (every byte decodes, so no value
can fail to decode). The encoder refuses a value that would break the
framing (``|``, STX, ETX, any control character) instead of writing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STX, ETX = b"\x02", b"\x03"
MAX_RECORD = 4096  # bytes between STX and ETX; FIAS records are a few hundred
ENCODING = "cp1252"
_TYPE = re.compile(r"[A-Z]{2}")
_FIELD = re.compile(r"[A-Z0-9#]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FiasError(ValueError):
    """A record that cannot be written as FIAS."""


@dataclass(frozen=True)
class Record:
    kind: str  # two letters: LS, LA, LE, LD, LR, GI, GO, GC, WR, WC, WA, PS, PA, RE, DR, DS, DE...
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)


@dataclass(frozen=True)
class Malformed:
    reason: str
    data: bytes  # the offending bytes, cut to 200


def _cp1252(data: bytes) -> str:
    # CP-1252 leaves five bytes undefined; a PMS that sends them meant Latin-1.
    return (
        data.decode(ENCODING, errors="strict")
        if not set(data) & {0x81, 0x8D, 0x8F, 0x90, 0x9D}
        else data.decode("latin-1")
    )


def parse(body: bytes) -> Record | Malformed:
    """One record's bytes, between STX and ETX."""
    text = _cp1252(body)
    if len(text) < 2 or not _TYPE.fullmatch(text[:2]):
        return Malformed("record type: two capital letters", body[:200])
    kind, rest = text[:2], text[2:]
    if rest and not (rest.startswith("|") and rest.endswith("|")):
        return Malformed("fields must be |-separated and end with |", body[:200])
    fields: dict[str, str] = {}
    for item in rest[1:-1].split("|") if len(rest) > 1 else []:
        if len(item) < 2 or not _FIELD.fullmatch(item[:2]):
            return Malformed(f"field id {item[:2]!r}: two capital letters, digits or #", body[:200])
        if _CONTROL.search(item):
            return Malformed(f"field {item[:2]}: a control character in its value", body[:200])
        if item[:2] in fields:
            return Malformed(f"field {item[:2]} given twice", body[:200])
        fields[item[:2]] = item[2:]
    return Record(kind, fields)


class Decoder:
    """Feed it what the socket read; it returns the records completed."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_frame = False

    def feed(self, data: bytes) -> list[Record | Malformed]:
        out: list[Record | Malformed] = []
        for byte in data:
            if not self._in_frame:
                if byte == STX[0]:
                    self._in_frame, self._buffer = True, bytearray()
                elif byte not in (0x0A, 0x0D):  # line ends between frames: some PMSs send them
                    self._junk(out, byte)
                continue
            if byte == ETX[0]:
                self._in_frame = False
                out.append(parse(bytes(self._buffer)))
                self._buffer = bytearray()
            elif byte == STX[0]:  # a new frame before the last one ended: that one is lost
                out.append(Malformed("STX inside a record (no ETX)", bytes(self._buffer[:200])))
                self._buffer = bytearray()
            elif len(self._buffer) >= MAX_RECORD:
                out.append(Malformed(f"record longer than {MAX_RECORD} bytes", bytes(self._buffer[:200])))
                self._in_frame, self._buffer = False, bytearray()
            else:
                self._buffer.append(byte)
        return out

    def _junk(self, out: list[Record | Malformed], byte: int) -> None:
        # Bytes outside a frame are reported once per run, not byte by byte.
        if out and isinstance(out[-1], Malformed) and out[-1].reason == "bytes outside a record":
            if len(out[-1].data) < 200:
                out[-1] = Malformed(out[-1].reason, out[-1].data + bytes([byte]))
            return
        out.append(Malformed("bytes outside a record", bytes([byte])))


def encode(record: Record) -> bytes:
    """The record framed, refusing what would break the framing."""
    if not _TYPE.fullmatch(record.kind):
        raise FiasError(f"record type {record.kind!r}: two capital letters")
    parts = [record.kind]
    for key, value in record.fields.items():
        if not _FIELD.fullmatch(key):
            raise FiasError(f"field id {key!r}: two capital letters, digits or #")
        if "|" in value or _CONTROL.search(value):
            raise FiasError(f"field {key}: '|' or a control character in its value")
        parts.append(key + value)
    body = "|".join(parts) + "|"
    try:
        data = body.encode(ENCODING)
    except UnicodeEncodeError as exc:
        raise FiasError(f"a character CP-1252 cannot carry: {exc.object[exc.start : exc.end]!r}") from None
    if len(data) > MAX_RECORD:
        raise FiasError(f"record longer than {MAX_RECORD} bytes")
    return STX + data + ETX
