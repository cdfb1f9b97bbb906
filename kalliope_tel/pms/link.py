"""The FIAS link, sans-IO: what kalliope-tel (the interface) says and
expects on one connection to a PMS, as a state machine that takes records
and the clock and returns what to send and what to do.

    connected ──> (LS sent) ──LS/LA from the PMS──> LINKED
      LINKED: LD and LR (the records we handle) sent; DR (resync) sent
              when asked; LA every ``alive_every`` s; nothing heard for
              ``dead_after`` s -> DEAD (the engine reconnects with backoff)
      LE from the PMS, or ``end()`` -> ENDED

Guest and wake-up records (GI, GO, GC, WR, WC, RE) and posting answers (PA)
are handed to the engine as ``Deliver``; database resync frames (DS ... DE)
mark ``resyncing``. Malformed input is answered with nothing and handed
to the engine to log (``Refused``): it never ends the link.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from kalliope_tel.pms.fias import Malformed, Record

# What the interface handles, described to the PMS in LR records.
HANDLED: dict[str, str] = {
    "GI": "RNG#GNGFGLDATI",
    "GO": "RNG#DATI",
    "GC": "RNG#GNROGLDATI",
    "WR": "RNDATI",
    "WC": "RNDATI",
    "WA": "RNDATIAS",
    "PS": "RNPTTADDDUP#DATI",
    "PA": "ASRNP#DATI",
    "RE": "RNRSDATI",
    "DS": "DATI",
    "DE": "DATI",
}
INCOMING = {"GI", "GO", "GC", "WR", "WC", "PA", "RE"}


class State(enum.Enum):
    CONNECTED = "connected"  # socket open, link start sent
    LINKED = "linked"
    DEAD = "dead"  # nothing heard for too long
    ENDED = "ended"


@dataclass(frozen=True)
class Deliver:
    record: Record


@dataclass(frozen=True)
class Refused:
    reason: str
    data: bytes


Action = Deliver | Refused


def stamp(now: float, zone: str = "UTC") -> dict[str, str]:
    """FIAS date and time fields (DA YYMMDD, TI HHMMSS) of a timestamp, in the
    hotel's time zone (a PMS speaks local time)."""
    at = datetime.fromtimestamp(now, ZoneInfo(zone))
    return {"DA": at.strftime("%y%m%d"), "TI": at.strftime("%H%M%S")}


def when(record: Record, zone: str) -> datetime | None:
    """The record's DA and TI (HHMM or HHMMSS) as a moment in the hotel's zone; None if malformed."""
    day, clock = record.get("DA"), record.get("TI")
    if not (len(day) == 6 and day.isdigit() and len(clock) in (4, 6) and clock.isdigit()):
        return None
    try:
        return datetime.strptime(day + clock.ljust(6, "0"), "%y%m%d%H%M%S").replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        return None


@dataclass
class FiasLink:
    now: float
    alive_every: float = 30.0
    dead_after: float = 90.0
    state: State = State.CONNECTED
    resyncing: bool = False
    resync_since: float = 0.0
    # A resync whose end (DE) never comes is over after this long: what is
    # owed to the PMS waits during a resync, and must not wait for ever.
    resync_timeout: float = 120.0
    last_heard: float = 0.0
    last_sent: float = 0.0
    outbox: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.last_heard = self.last_sent = self.now
        self._send(Record("LS", stamp(self.now)))

    def _send(self, record: Record) -> None:
        self.outbox.append(record)
        self.last_sent = self.now

    def take(self) -> list[Record]:
        """What to write to the socket now."""
        out, self.outbox = self.outbox, []
        return out

    def _linked(self) -> None:
        self.state = State.LINKED
        self._send(Record("LD", {**stamp(self.now), "V#": "1.0", "IF": "PB"}))
        for kind, fields in HANDLED.items():
            self._send(Record("LR", {"RI": kind, "FL": fields}))
        self._send(Record("LA", stamp(self.now)))

    def receive(self, item: Record | Malformed, now: float) -> list[Action]:
        self.now = now
        self.last_heard = now
        if isinstance(item, Malformed):
            return [Refused(item.reason, item.data)]
        kind = item.kind
        if kind == "LS":
            self._linked()  # the PMS (re)starts the link: describe ourselves again
        elif kind == "LA":
            if self.state is State.CONNECTED:
                self._linked()
        elif kind == "LE":
            self.state = State.ENDED
        elif kind == "DS":
            self.resyncing, self.resync_since = True, now
        elif kind == "DE":
            self.resyncing = False
        elif kind in INCOMING:
            if self.state is not State.LINKED:
                return [Refused(f"{kind} before the link was up", b"")]
            return [Deliver(item)]
        else:
            return [Refused(f"record type {kind} is not handled", b"")]
        return []

    def resync(self) -> None:
        """Ask the PMS for its whole guest database (after a link (re)start)."""
        self._send(Record("DR", stamp(self.now)))

    def send(self, record: Record) -> None:
        """A posting, a wake-up answer, a room status: sent now if linked."""
        if self.state is not State.LINKED:
            raise RuntimeError(f"the link is {self.state.value}")
        self._send(record)

    def tick(self, now: float) -> None:
        """The clock: keep the link alive, notice a silent PMS."""
        self.now = now
        if self.state in (State.DEAD, State.ENDED):
            return
        if self.resyncing and now - self.resync_since > self.resync_timeout:
            self.resyncing = False
        if self.dead_after and now - self.last_heard > self.dead_after:
            self.state = State.DEAD
        elif now - self.last_sent >= self.alive_every:
            self._send(Record("LA", stamp(now)))

    def end(self) -> None:
        if self.state is State.LINKED:
            self._send(Record("LE", stamp(self.now)))
        self.state = State.ENDED
