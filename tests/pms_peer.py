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
    """Listens on loopback (the interface connects to it). Posts a charge
    once per posting sequence (P#), however often it arrives, as a PMS does;
    answers a database resync request (DR) with its guests."""

    answer_postings: bool = True
    guests: dict[str, str] = field(default_factory=dict)  # room -> guest name, for DR
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    posted: dict[str, dict[str, str]] = field(default_factory=dict)  # P# -> the posting, first arrival
    repeats: int = 0  # postings that arrived again with a P# already posted
    connections: int = 0
    _conn: socket.socket | None = None
    _refuse_until: float = 0.0

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
            if time.monotonic() < self._refuse_until:  # the PMS is down: the connection is dropped
                conn.close()
                continue
            self._conn = conn
            self.connections += 1
            left = b""
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                records, left = unframe(left + data)
                for kind, fields in records:
                    with self._lock:
                        self.received.append((kind, fields))
                    try:
                        self._answer(conn, kind, fields)
                    except OSError:
                        break
            if self._conn is conn:
                self._conn = None
            conn.close()

    def _answer(self, conn: socket.socket, kind: str, fields: dict[str, str]) -> None:
        if kind == "LS":
            conn.sendall(frame("LS") + frame("LA"))
        elif kind == "DR":
            body = b"".join(frame("GI", RN=room, GN=name) for room, name in self.guests.items())
            conn.sendall(frame("DS") + body + frame("DE"))
        elif kind == "PS" and self.answer_postings:
            sequence = fields.get("P#", "")
            with self._lock:
                if sequence in self.posted:
                    self.repeats += 1
                else:
                    self.posted[sequence] = fields
            conn.sendall(frame("PA", AS="OK", RN=fields.get("RN", ""), P_=sequence))

    def send(self, kind: str, **values: str) -> None:
        self.send_raw(frame(kind, **values))

    def send_raw(self, data: bytes) -> None:
        deadline = time.monotonic() + 10
        while self._conn is None:
            assert time.monotonic() < deadline, "no interface connected"
            time.sleep(0.05)
        self._conn.sendall(data)

    def drop(self, seconds: float) -> None:
        """The PMS goes away for ``seconds``: the link is cut and new connections refused."""
        self._refuse_until = time.monotonic() + seconds
        conn = self._conn
        if conn is not None:
            conn.shutdown(socket.SHUT_RDWR)

    def back(self) -> None:
        """The PMS is reachable again."""
        self._refuse_until = 0.0

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
