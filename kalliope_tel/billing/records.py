"""Call records from Asterisk's CDRs, priced as they are recorded.

Both paths give the same fields: the CDR file (``cdr_custom.conf``, JSON
lines) and AMI ``Cdr`` events (``cdr_manager.conf`` maps the same extra
fields). Each value is checked here, the one gate between Asterisk's data
and the store: a CDR that fails is refused with its reason (logged and
counted), never half recorded. Only CDRs that kalliope-tel's dialplan
marked (``kt_pbx``, ``kt_from``: a call from an extension) are recorded.

A record is inserted with ``ON CONFLICT DO NOTHING`` on Asterisk's identity
of the CDR (server, uniqueid, sequence): whichever path or node offers it
first writes it, every later offer is a no-op.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.asterisk.confgate import UnsafeValue
from kalliope_tel.billing.models import CallRecord, CostProfile, Direction
from kalliope_tel.billing.profiles import tariff
from kalliope_tel.billing.rating import Tariff, billed_seconds
from kalliope_tel.db.engine import insert_ignoring
from kalliope_tel.errors import KalliopeError
from kalliope_tel.hotel.models import Stay
from kalliope_tel.hotel.services import find_room
from kalliope_tel.tenancy.models import Pbx

# CDR field -> AMI header (cdr_manager.conf's mappings name the extra ones).
AMI_HEADERS = {
    "uniqueid": "UniqueID",
    "linkedid": "LinkedID",
    "sequence": "Sequence",
    "channel": "Channel",
    "dstchannel": "DestinationChannel",
    "disposition": "Disposition",
    "start": "StartEpoch",
    "answer": "AnswerEpoch",
    "end": "EndEpoch",
    "kt_pbx": "KtPbx",
    "kt_from": "KtFrom",
    "kt_dialled": "KtDialled",
    "kt_out": "KtOut",
    "kt_line": "KtLine",
}
UNIQUEID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DIALLED = re.compile(r"^[0-9*#+]{1,40}$")
NAME = re.compile(r"^[A-Za-z0-9._+-]{1,80}$")
CHANNEL = re.compile(r"^[\x21-\x7e]{0,200}$")
# A trunk's channel: technology/endpoint-<8 hex digits> (PJSIP/lab-trunk-0000001f).
TRUNK_CHANNEL = re.compile(r"^(?:PJSIP|SIP|IAX2)/(?P<line>[A-Za-z0-9._+-]{1,80})-[0-9a-f]{8}$")
DISPOSITIONS = {"ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"}


class BadCdr(KalliopeError):
    """A CDR that cannot be recorded as it is; the message says which field."""


@dataclass(frozen=True)
class Cdr:
    uniqueid: str
    linkedid: str
    sequence: int
    channel: str
    dst_channel: str
    disposition: str
    start: datetime
    answer: datetime | None
    end: datetime
    pbx: str
    extension: str
    dialled: str
    out: str  # the outbound class, "refused", or "" (stayed inside)
    line_var: str

    @property
    def direction(self) -> Direction:
        if self.out == "refused":
            return Direction.REFUSED
        return Direction.OUTBOUND if self.out else Direction.INTERNAL

    @property
    def line(self) -> str:
        """The outgoing line: set by the trunk's dialplan (CDR(kt_line)), else
        the trunk endpoint the call was dialled to."""
        if self.direction is not Direction.OUTBOUND:
            return ""
        if self.line_var:
            return self.line_var
        found = TRUNK_CHANNEL.match(self.dst_channel)
        return found.group("line") if found else ""

    @property
    def billsec(self) -> int:
        """Answered seconds, rounded up to the whole second as carriers bill
        (Asterisk's own billsec truncates: 0.9 s of talk would be free)."""
        if self.answer is None or self.disposition != "ANSWERED":
            return 0
        return max(0, math.ceil((self.end - self.answer).total_seconds() - 1e-6))

    @property
    def duration(self) -> int:
        return max(0, math.ceil((self.end - self.start).total_seconds() - 1e-6))


def _when(value: Any, field: str) -> datetime | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadCdr(f"{field}: {value!r} is not a time in seconds since the epoch") from None
    if seconds <= 0:
        return None  # not answered
    if not math.isfinite(seconds) or seconds > 32503680000:
        raise BadCdr(f"{field}: {value!r} is out of range")
    return datetime.fromtimestamp(seconds, UTC)


def _text(fields: Mapping[str, Any], name: str, pattern: re.Pattern[str], *, optional: bool = False) -> str:
    value = fields.get(name)
    text = "" if value is None else str(value)
    if optional and text == "":
        return ""
    if not pattern.match(text):
        raise BadCdr(f"{name}: {text[:80]!r} is not valid")
    return text


def _gated(fields: Mapping[str, Any], name: str, gate: Callable[[object], str]) -> str:
    """A value that names something of ours (a PBX, an extension), checked by
    the config gate that made it: what the gate would refuse was never ours."""
    try:
        return gate(fields.get(name))
    except UnsafeValue as exc:
        raise BadCdr(f"{name}: {exc}") from None


def is_ours(fields: Mapping[str, Any]) -> bool:
    """A call from an extension, as kalliope-tel's dialplan marks it."""
    return bool(fields.get("kt_pbx")) and bool(fields.get("kt_from"))


def parse(fields: Mapping[str, Any]) -> Cdr:
    """A CDR (file or AMI names, see ``from_ami``), every value checked."""
    try:
        sequence = int(fields.get("sequence", ""))
    except (TypeError, ValueError):
        raise BadCdr(f"sequence: {fields.get('sequence')!r} is not a number") from None
    disposition = str(fields.get("disposition", ""))
    if disposition not in DISPOSITIONS:
        raise BadCdr(f"disposition: {disposition[:40]!r} is not one of Asterisk's")
    start = _when(fields.get("start"), "start")
    end = _when(fields.get("end"), "end")
    if start is None or end is None or end < start:
        raise BadCdr("start/end: missing, or the call ends before it starts")
    return Cdr(
        uniqueid=_text(fields, "uniqueid", UNIQUEID),
        linkedid=_text(fields, "linkedid", UNIQUEID, optional=True),
        sequence=sequence,
        channel=_text(fields, "channel", CHANNEL),
        dst_channel=_text(fields, "dstchannel", CHANNEL),
        disposition=disposition,
        start=start,
        answer=_when(fields.get("answer"), "answer"),
        end=end,
        pbx=_gated(fields, "kt_pbx", confgate.slug),
        extension=_gated(fields, "kt_from", confgate.extension),
        dialled=_text(fields, "kt_dialled", DIALLED),
        out=_text(fields, "kt_out", NAME, optional=True),
        line_var=_text(fields, "kt_line", NAME, optional=True),
    )


def from_ami(message: Callable[[str], str]) -> dict[str, str]:
    """An AMI Cdr event's fields under the file's names (``message.get``)."""
    return {field: message(header) for field, header in AMI_HEADERS.items()}


# -- pricing ------------------------------------------------------------------
@dataclass(frozen=True)
class Price:
    cost: int | None
    currency: str = ""
    billed_seconds: int | None = None
    profile: str = ""
    rule_id: int | None = None
    rule_key: str = ""
    unpriced: str = ""


@dataclass(frozen=True)
class RoomCall:
    """A priced call from an occupied room, as the PMS link posts it."""

    record_id: int
    room: str
    dialled: str
    start: datetime
    billsec: int
    cost: int  # ten-thousandths of the currency
    currency: str


RoomCallHook = Callable[[Session, Pbx, RoomCall], None]


class Rater:
    """Prices calls with the store's profiles, compiled once per revision
    (shared by the threads recording calls)."""

    def __init__(self, on_room_call: RoomCallHook | None = None) -> None:
        self._lock = threading.Lock()
        # Told of every priced call from an occupied room, in the transaction
        # that records it (the PMS link owes the posting there).
        self.on_room_call = on_room_call
        self._compiled: dict[int, tuple[int, Tariff, dict[str, int]]] = {}

    def _tariff(self, session: Session, profile: CostProfile) -> tuple[Tariff, dict[str, int]]:
        with self._lock:
            cached = self._compiled.get(profile.id)
        if cached is not None and cached[0] == profile.revision:
            return cached[1], cached[2]
        compiled, ids = tariff(session, profile)
        with self._lock:
            self._compiled[profile.id] = (profile.revision, compiled, ids)
        return compiled, ids

    def price(self, session: Session, pbx: Pbx, cdr: Cdr) -> Price:
        if cdr.direction is not Direction.OUTBOUND:
            return Price(None)  # not billable: nothing to report either
        line = cdr.line
        profiles = session.scalars(
            select(CostProfile).where(CostProfile.pbx_id == pbx.id, CostProfile.line.in_([line, ""]))
        ).all()
        profile = next((p for p in profiles if p.line == line), None) or next(
            (p for p in profiles if p.line == ""), None
        )
        if profile is None:
            return Price(None, unpriced=f"no cost profile for line {line or '(unknown)'} and no default profile")
        compiled, ids = self._tariff(session, profile)
        rated = compiled.rate(cdr.dialled, cdr.billsec)
        if rated is None:
            return Price(
                None, profile=profile.name, unpriced=f"no rule of profile {profile.name} matches {cdr.dialled}"
            )
        rule, cost = rated
        return Price(
            cost,
            profile.currency,
            billed_seconds(cdr.billsec, rule.first_increment, rule.next_increment),
            profile.name,
            ids.get(rule.key),
            rule.key,
        )


# -- recording ----------------------------------------------------------------
def _stay(session: Session, pbx: Pbx, extension: str, at: datetime) -> tuple[int | None, int | None]:
    """The calling room, and its stay when the call started (if any)."""
    room = find_room(session, pbx, extension)
    if room is None:
        return None, None
    stay_id = session.scalar(
        select(Stay.id)
        .where(Stay.room_id == room.id, Stay.checkin_at <= at, or_(Stay.checkout_at.is_(None), Stay.checkout_at > at))
        .order_by(Stay.checkin_at.desc())
        .limit(1)
    )
    return room.id, stay_id


def record(session: Session, server: str, cdr: Cdr, *, source: str, node: str, rater: Rater) -> bool:
    """Write the call once; True when this call wrote it, False when it was
    there already. Raises BadCdr for a PBX this store does not have."""
    pbx = session.scalar(select(Pbx).where(Pbx.slug == cdr.pbx))
    if pbx is None:
        raise BadCdr(f"kt_pbx: no PBX {cdr.pbx!r} in this store")
    exists = session.scalar(
        select(CallRecord.id).where(
            CallRecord.server == server, CallRecord.uniqueid == cdr.uniqueid, CallRecord.sequence == cdr.sequence
        )
    )
    if exists is not None:
        return False
    room_id, stay_id = _stay(session, pbx, cdr.extension, cdr.start)
    price = rater.price(session, pbx, cdr)
    values = {
        "pbx_id": pbx.id,
        "server": server,
        "uniqueid": cdr.uniqueid,
        "sequence": cdr.sequence,
        "linkedid": cdr.linkedid,
        "extension": cdr.extension,
        "dialled": cdr.dialled,
        "line": cdr.line,
        "direction": cdr.direction,
        "start_at": cdr.start,
        "answer_at": cdr.answer,
        "end_at": cdr.end,
        "duration": cdr.duration,
        "billsec": cdr.billsec,
        "disposition": cdr.disposition,
        "channel": cdr.channel,
        "dst_channel": cdr.dst_channel,
        "room_id": room_id,
        "stay_id": stay_id,
        "cost": price.cost,
        "currency": price.currency,
        "billed_seconds": price.billed_seconds,
        "profile_name": price.profile,
        "rule_id": price.rule_id,
        "rule_key": price.rule_key,
        "unpriced": price.unpriced[:200],
        "source": source,
        "recorded_by": node[:100],
        "recorded_at": datetime.now(UTC),
    }
    statement = (
        insert_ignoring(session, CallRecord, ["server", "uniqueid", "sequence"])
        .values(**values)
        .returning(CallRecord.id)
    )
    record_id = session.execute(statement).scalar()
    if record_id is not None and rater.on_room_call is not None and stay_id is not None and price.cost is not None:
        rater.on_room_call(session, pbx, RoomCall(record_id, cdr.extension, cdr.dialled, cdr.start, cdr.billsec,
                                                  price.cost, price.currency))  # fmt: skip
    return record_id is not None
