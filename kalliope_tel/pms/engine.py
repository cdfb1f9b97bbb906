"""One PBX's FIAS link carried out on a socket: the sans-IO ``FiasLink``
and ``Decoder`` driven by asyncio, the store touched in threads.

A link (re)started asks the PMS for its guest database (DR) and applies
the resync. Records from the PMS are applied one at a time, in order.
What is owed goes out in id order, one posting at a time: the next waits
for the PMS's PA of the last (matched by P#), so postings arrive in order
and a posting sent again after a failure carries the same P#. A link that
drops, or goes silent, is opened again with the one backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from kalliope_tel.backoff import Backoff, Retry
from kalliope_tel.container import Container
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.errors import KalliopeError
from kalliope_tel.pms import owed
from kalliope_tel.pms.apply import Unusable, apply
from kalliope_tel.pms.feature import lender
from kalliope_tel.pms.fias import Decoder, Record, encode
from kalliope_tel.pms.link import Deliver, FiasLink, Refused, State, stamp
from kalliope_tel.pms.models import LinkMode
from kalliope_tel.tenancy.models import Pbx

log = structlog.get_logger(__name__)

# A PMS on the hotel's LAN is tried again at most every 5 s: after an outage the
# postings owed go out seconds after it is back (a 15 s cap took 17 s).
RECONNECT = Backoff(0.5, 5.0, jitter=0.2)
# A posting not answered within this long is sent again (same P#).
ANSWER_WAIT = 20.0
# How often owed wake-up answers and room status are looked for, and the live state written.
POLL_EVERY = 0.5


@dataclass
class _Resync:
    asked_at: datetime = field(default_factory=utcnow)  # when DR went out
    started: bool = False  # DS seen
    rooms: set[str] = field(default_factory=set)


@dataclass
class LinkFigures:
    connects: int = 0
    records_in: int = 0
    malformed: int = 0
    resyncs: int = 0
    refused: int = 0
    applied: int = 0
    sent: int = 0
    last_record: str = ""
    last_error: str = ""
    state: str = "down"
    extra: dict[str, Any] = field(default_factory=dict)


class LinkRunner:
    """The link of PBX ``pbx_id`` while this node holds its lease."""

    def __init__(self, container: Container, node: str, pbx_id: int, alive_every: float, dead_after: float) -> None:
        self.container = container
        self.node = node
        self.pbx_id = pbx_id
        self.alive_every, self.dead_after = alive_every, dead_after
        self.figures = LinkFigures()
        self._written: tuple[str, str, str, int] | None = None  # what _note last wrote
        # What the hotel and wake-up lend, when they run here (resolved once).
        self._outcomes = lender(container, "wakeup", "alarm_outcomes")
        self._cleaning = lender(container, "hotel", "cleaning_after")
        self._occupied = lender(container, "hotel", "occupied_since")
        self._check_out = lender(container, "hotel", "check_out")

    # -- the store ----------------------------------------------------------
    def _settings(self) -> tuple[LinkMode, str, int]:
        with transaction(self.container.sessions, read_only=True) as s:
            link = owed.link_of(s, self.pbx_id)
            if link is None:
                raise KalliopeError("the PMS link was removed")
            return link.mode, link.host, link.port

    def _note(self, state: str | None = None, error: str | None = None, *, linked: bool = False,
              resynced: bool = False) -> None:  # fmt: skip
        """The live state, for status and doctor (what this node sees)."""
        if state is not None:
            self.figures.state = state
        if error is not None:
            self.figures.last_error = error[:300]
        shown = (self.figures.state, self.figures.last_error, self.figures.last_record, self.figures.refused)
        if shown == self._written and not (linked or resynced):
            return  # nothing new: no write (SQLite has one writer at a time)
        self._written = shown
        with transaction(self.container.sessions) as s:
            link = owed.link_of(s, self.pbx_id)
            if link is None or link.claimed_by != self.node:
                return
            link.state, link.last_error = self.figures.state, self.figures.last_error
            link.last_record = self.figures.last_record[:200]
            link.refused_records = self.figures.refused
            if self.figures.last_record:
                link.last_record_at = utcnow()
            if linked:
                link.linked_at = utcnow()
            if resynced:
                link.resynced_at, link.resync_wanted = utcnow(), False

    def _apply(self, record: Record, resyncing: bool) -> str:
        with transaction(self.container.sessions) as s:
            pbx = s.get(Pbx, self.pbx_id)
            link = owed.link_of(s, self.pbx_id)
            if pbx is None or link is None:
                return "gone"
            if record.kind == "PA":
                done = owed.answered(s, self.pbx_id, record.get("P#"), record.get("AS"), record.get("CT"))
                return "answer" if done is not None else "unknown_answer"
            return apply(s, pbx, link, record, resyncing=resyncing).what

    def _owe_polled(self) -> None:
        """Wake-up answers and room status owed since the last look. Looked
        for in a read, written only when there is something to owe: an idle
        link takes no write lock (SQLite has one writer at a time)."""
        outcomes, changes = self._outcomes, self._cleaning
        with transaction(self.container.sessions, read_only=True) as s:
            pbx, link = s.get(Pbx, self.pbx_id), owed.link_of(s, self.pbx_id)
            if pbx is None or link is None:
                return
            alarms = [a.alarm_id for a in owed.open_alarms(s, pbx)]
            over = bool(alarms and outcomes is not None and outcomes(s, alarms))
            cleaned = bool(link.room_status and changes is not None and changes(s, pbx, link.cleaning_seen, 1))
        if not (over or cleaned):
            return
        with transaction(self.container.sessions) as s:
            pbx, link = s.get(Pbx, self.pbx_id), owed.link_of(s, self.pbx_id)
            if pbx is None or link is None:
                return
            if outcomes is not None:
                owed.owe_wakeup_answers(s, pbx, outcomes)
            if link.room_status and changes is not None:
                owed.owe_room_status(s, pbx, link, changes(s, pbx, link.cleaning_seen))

    def _next(self) -> tuple[int, Record, bool] | None:
        """The next message to send, marked sent: (id, record, waits for an answer).
        Asked every round of the link (0.2 s): looked for in a read, so an idle
        link takes no write lock."""
        with transaction(self.container.sessions, read_only=True) as s:
            if owed.next_owed(s, self.pbx_id) is None:
                return None
        with transaction(self.container.sessions) as s:
            message = owed.next_owed(s, self.pbx_id)
            if message is None:
                return None
            record, posting = owed.as_record(message), message.kind.value == "PS"
            owed.mark_sent(s, message.id, self.node)
            return message.id, record, posting

    def _resync_wanted(self) -> bool:
        with transaction(self.container.sessions, read_only=True) as s:
            link = owed.link_of(s, self.pbx_id)
            return bool(link is not None and link.resync_wanted)

    # -- the socket ---------------------------------------------------------
    async def run(self) -> None:
        retry = Retry(RECONNECT)
        server: asyncio.Server | None = None
        accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue(1)
        try:
            while True:
                mode, host, port = await asyncio.to_thread(self._settings)
                await asyncio.to_thread(self._note, "connecting")
                try:
                    if mode is LinkMode.LISTEN:
                        if server is None:
                            server = await asyncio.start_server(lambda r, w: accepted.put_nowait((r, w)), host, port)
                        reader, writer = await accepted.get()
                    else:
                        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
                except (OSError, TimeoutError, asyncio.QueueFull) as exc:
                    delay = retry.next()
                    await asyncio.to_thread(self._note, "down", f"cannot reach the PMS at {host}:{port}: {exc}")
                    log.warning("pms.connect_failed", pbx_id=self.pbx_id, host=host, port=port, error=str(exc),
                                retry_in=round(delay, 2))  # fmt: skip
                    await asyncio.sleep(delay)
                    continue
                self.figures.connects += 1
                _watch_peer(writer)
                linked = False
                try:
                    linked = await self._converse(reader, writer)
                except asyncio.CancelledError:  # serve stopping, or the lease lost: say goodbye (LE)
                    with contextlib.suppress(Exception):
                        writer.write(encode(Record("LE", stamp(time.time()))))
                        await asyncio.wait_for(writer.drain(), 1)
                    raise
                except OSError as exc:  # reset by the PMS, or a write into a closed socket
                    self.figures.last_error = f"the connection failed: {exc}"
                finally:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
                if linked:
                    retry.reset()
                delay = retry.next()
                await asyncio.to_thread(self._note, "down")
                log.warning(
                    "pms.link_down", pbx_id=self.pbx_id, error=self.figures.last_error, retry_in=round(delay, 2)
                )
                await asyncio.sleep(delay)
        finally:
            if server is not None:
                server.close()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._note, "down")

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One connection, until it drops or goes silent; True if it was linked."""
        link = FiasLink(now=time.time(), alive_every=self.alive_every, dead_after=self.dead_after)
        decoder = Decoder()
        in_flight: tuple[int, float, Record] | None = None  # posting id, sent at, record
        ever_linked, last_poll = False, 0.0
        resync: _Resync | None = None  # the resync we asked for (DR), while its answer comes
        log.info("pms.connected", pbx_id=self.pbx_id)
        while True:
            for record in link.take():
                writer.write(encode(record))
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                data = None
            if data == b"":
                self.figures.last_error = "the PMS closed the connection"
                return ever_linked
            now = time.time()
            for item in decoder.feed(data or b""):
                was = link.state
                for action in link.receive(item, now):
                    await self._act(action, link)
                if not isinstance(item, Record):
                    self.figures.malformed += 1
                else:
                    self.figures.records_in += 1
                    self.figures.last_record = item.kind + "|" + "|".join(f"{k}{v}" for k, v in item.fields.items())
                    if item.kind == "PA" and in_flight is not None and item.get("P#") == str(in_flight[0]):
                        in_flight = None
                if was is not State.LINKED and link.state is State.LINKED:
                    ever_linked = True
                    link.resync()  # a link (re)started: the PMS's guests, again
                    resync = _Resync()
                    await asyncio.to_thread(self._note, "linked", "", linked=True)
                    log.info("pms.linked", pbx_id=self.pbx_id)
                if isinstance(item, Record):
                    resync = await self._follow_resync(item, resync)
            link.tick(now)
            if link.state in (State.DEAD, State.ENDED):
                self.figures.last_error = (
                    "the PMS went silent" if link.state is State.DEAD else "the PMS ended the link"
                )
                return ever_linked
            if link.state is not State.LINKED or link.resyncing:
                continue
            if now - last_poll >= POLL_EVERY:
                last_poll = now
                await asyncio.to_thread(self._owe_polled)
                if await asyncio.to_thread(self._resync_wanted):
                    link.resync()
                    resync = _Resync()
                    await asyncio.to_thread(self._note, "resyncing")
                await asyncio.to_thread(self._note)
            if in_flight is not None and now - in_flight[1] > ANSWER_WAIT:
                link.send(in_flight[2])  # unanswered: again, with its P#
                in_flight = (in_flight[0], now, in_flight[2])
            while in_flight is None:
                nxt = await asyncio.to_thread(self._next)
                if nxt is None:
                    break
                message_id, record, posting = nxt
                link.send(record)
                self.figures.sent += 1
                if posting:
                    in_flight = (message_id, now, record)

    async def _follow_resync(self, record: Record, resync: _Resync | None) -> _Resync | None:
        """The PMS's answer to our DR: the rooms it names (GI) between DS and DE.
        At DE, a room occupied here that the PMS did not name is checked out:
        the PMS is the truth. A DS or DE nobody asked for changes nothing."""
        if resync is None:
            return None
        if record.kind == "DS":
            resync.started = True
        elif record.kind == "GI" and resync.started:
            resync.rooms.add(record.get("RN").strip())
        elif record.kind == "DE" and resync.started:
            gone = await asyncio.to_thread(self._check_out_others, resync.rooms, resync.asked_at)
            self.figures.resyncs += 1
            await asyncio.to_thread(self._note, "linked", resynced=True)
            log.info("pms.resynced", pbx_id=self.pbx_id, guests=len(resync.rooms), checked_out=gone)
            return None
        return resync

    def _check_out_others(self, named: set[str], asked_at: datetime) -> list[str]:
        """Occupied rooms the resync did not name are checked out; not a stay
        that began after DR went out (a check-in the PMS sent meanwhile)."""
        occupied, check_out = self._occupied, self._check_out
        if occupied is None or check_out is None:
            return []
        with transaction(self.container.sessions) as s:
            pbx = s.get(Pbx, self.pbx_id)
            if pbx is None:
                return []
            gone = sorted(room for room, since in occupied(s, pbx).items() if room not in named and since < asked_at)
            for room in gone:
                check_out(s, pbx, room)
            return gone

    async def _act(self, action: Deliver | Refused, link: FiasLink) -> None:
        if isinstance(action, Refused):
            self.figures.refused += 1
            log.warning("pms.record_refused", pbx_id=self.pbx_id, reason=action.reason, data=action.data[:80])
            return
        record = action.record
        try:
            what = await asyncio.to_thread(self._apply, record, link.resyncing)
        except (Unusable, KalliopeError) as exc:
            self.figures.refused += 1
            log.warning("pms.record_not_applied", pbx_id=self.pbx_id, kind=record.kind, room=record.get("RN"),
                        reason=_reason(exc))  # fmt: skip
            return
        self.figures.applied += 1
        log.info("pms.record_applied", pbx_id=self.pbx_id, kind=record.kind, room=record.get("RN"), outcome=what)


def _watch_peer(writer: asyncio.StreamWriter) -> None:
    """A PMS that vanishes without closing (its host down, a cable pulled) is
    noticed by the kernel: keepalive probes after 10 s of silence (3, 5 s
    apart), and data unacknowledged for 30 s ends the connection."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 30_000)


def _reason(exc: Exception) -> str:
    """An error's reason in English (the log's language), with its catalogue code."""
    code = getattr(exc, "code", "")
    return f"{code}: {exc}" if code else str(exc)
