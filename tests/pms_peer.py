"""A PMS for the tests: a TCP peer that speaks FIAS the way the published
record layout describes it, written apart from kalliope_tel.pms (its own
framing and parsing, sharing no code), so a fault in the project's codec
cannot hide itself. It records every record it receives, answers link
records and postings, and sends what a test tells it to.

Layout it follows: STX (0x02), a two-letter record type, then for each
field '|' + a two-character id + the value, a final '|', ETX (0x03).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


def frame(kind: str, **values: str) -> bytes:
    text = kind + "".join(f"|{key.replace('_', '#')}{value}" for key, value in values.items()) + "|"
    return b"\x02" + text.encode("cp1252") + b"\x03"


def unframe(stream: bytes) -> tuple[list[tuple[str, dict[str, str]]], bytes]:
    """Complete records in ``stream`` as (type, fields), and what is left."""
    records = []
    while True:
        start = stream.find(b"\x02")
        end = stream.find(b"\x03", start + 1)
        if start < 0 or end < 0:
            return records, stream[start:] if start >= 0 else b""
        body = stream[start + 1 : end].decode("cp1252")
        stream = stream[end + 1 :]
        kind, _, rest = body.partition("|")
        fields = {chunk[:2]: chunk[2:] for chunk in rest.split("|") if len(chunk) >= 2}
        records.append((kind, fields))


@dataclass
class PmsPeer:
    """Listens on loopback (the interface connects to it)."""

    answer_postings: bool = True
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _conn: socket.socket | None = None

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._conn = conn
            left = b""
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    break
                if not data:
                    break
                records, left = unframe(left + data)
                for kind, fields in records:
                    with self._lock:
                        self.received.append((kind, fields))
                    self._answer(conn, kind, fields)
            self._conn = None

    def _answer(self, conn: socket.socket, kind: str, fields: dict[str, str]) -> None:
        if kind == "LS":
            conn.sendall(frame("LS") + frame("LA"))
        elif kind == "PS" and self.answer_postings:
            conn.sendall(frame("PA", AS="OK", RN=fields.get("RN", ""), P_=fields.get("P#", "")))

    def send(self, kind: str, **values: str) -> None:
        assert self._conn is not None, "no interface connected"
        self._conn.sendall(frame(kind, **values))

    def records(self, kind: str) -> list[dict[str, str]]:
        with self._lock:
            return [fields for k, fields in self.received if k == kind]

    def wait_for(self, kind: str, count: int = 1, seconds: float = 10) -> list[dict[str, str]]:
        deadline = time.monotonic() + seconds
        while len(self.records(kind)) < count:
            assert time.monotonic() < deadline, f"{count} {kind} record(s) never came: {self.received[-5:]}"
            time.sleep(0.05)
        return self.records(kind)

    def close(self) -> None:
        self._server.close()
        if self._conn is not None:
            self._conn.close()
