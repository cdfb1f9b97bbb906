"""AMI wire format: a sans-IO parser and an encoder.

Asterisk opens with a banner line, then sends messages as ``Key: Value``
lines ended by an empty line, CRLF throughout::

    Asterisk Call Manager/11.0.0\\r\\n
    Response: Success\\r\\nActionID: 1\\r\\nMessage: Authentication accepted\\r\\n\\r\\n
    Event: FullyBooted\\r\\nPrivilege: system,all\\r\\nStatus: Fully Booted\\r\\n\\r\\n

Keys may repeat (``Output:`` of a Command, ``Variable:`` of an Originate), so a
message keeps its ordered pairs and offers first-value lookup on top.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_MESSAGE_BYTES = 1 << 20  # a 'Command' output can be large, but not unbounded
BANNER_PREFIX = b"Asterisk Call Manager/"


class AmiError(Exception):
    """Base of AMI errors."""


class AmiProtocolError(AmiError):
    """The peer sent something that is not AMI."""


class AmiAuthError(AmiError):
    """Login refused: wrong username or secret, or host not permitted."""


class AmiActionError(AmiError):
    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI {action} failed: {message}")
        self.action, self.message = action, message


@dataclass(frozen=True)
class AmiMessage:
    pairs: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def get(self, key: str, default: str = "") -> str:
        low = key.lower()
        return next((v for k, v in self.pairs if k.lower() == low), default)

    def get_all(self, key: str) -> list[str]:
        low = key.lower()
        return [v for k, v in self.pairs if k.lower() == low]

    def __getitem__(self, key: str) -> str:
        value = self.get(key, "\0")
        if value == "\0":
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, "\0") != "\0"

    @property
    def is_event(self) -> bool:
        return "Event" in self

    @property
    def is_response(self) -> bool:
        return "Response" in self

    @property
    def name(self) -> str:
        return self.get("Event") or self.get("Response")


def encode_action(action: str, fields: Iterable[tuple[str, str]]) -> bytes:
    """One action as bytes. Values may not contain line breaks (injection)."""
    lines = [f"Action: {action}"]
    for key, value in fields:
        text = str(value)
        if "\r" in text or "\n" in text or "\r" in key or "\n" in key:
            raise ValueError(f"AMI field {key!r} contains a line break")
        lines.append(f"{key}: {text}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class AmiParser:
    """Feed bytes in, get complete messages out. Holds at most one partial message."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[AmiMessage]:
        self._buffer += data
        out: list[AmiMessage] = []
        if self.banner is None:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > 200:
                    raise AmiProtocolError("no AMI banner: this is not an Asterisk manager port")
                return out
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            if not line.startswith(BANNER_PREFIX):
                raise AmiProtocolError(f"no AMI banner: got {line[:60]!r}")
            self.banner = line.decode("utf-8", "replace")
            del self._buffer[: end + 1]
        while True:
            end, sep_len = _find_blank_line(self._buffer)
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    raise AmiProtocolError(f"AMI message longer than {MAX_MESSAGE_BYTES} bytes")
                return out
            block = bytes(self._buffer[:end])
            del self._buffer[: end + sep_len]
            if block.strip():
                out.append(parse_message(block))


def _find_blank_line(buf: bytearray) -> tuple[int, int]:
    crlf = buf.find(b"\r\n\r\n")
    lf = buf.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return crlf, 4
    return (lf, 2) if lf >= 0 else (-1, 0)


def parse_message(block: bytes) -> AmiMessage:
    """Parse one message block (without its blank-line terminator).

    ``Output: ...`` lines of a ``Command`` response are kept as repeated keys.
    A line without ``:`` is a protocol error, not a guess.
    """
    text = block.decode("utf-8", "replace")
    pairs: list[tuple[str, str]] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if not raw:
            continue
        key, sep, value = raw.partition(":")
        if not sep or not key.strip() or " " in key.strip():
            raise AmiProtocolError(f"not an AMI 'Key: Value' line: {raw[:80]!r}")
        pairs.append((key.strip(), value[1:] if value.startswith(" ") else value))
    return AmiMessage(tuple(pairs))
