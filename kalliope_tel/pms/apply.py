"""The PMS's guest and wake-up records, carried out with the receptionist's
own services (lent by the hotel and wake-up through ``Feature.provides``):

* GI check-in (RN room, GN guest's name, GF first name, CS class of service);
* GO check-out;
* GC guest change: a new name, a new class, or a room move (RO the old room);
* WR a wake-up call (DA, TI in the hotel's time), WC its clearing;
* RE room equipment from the PMS: CS sets the outbound class.

During the PMS's database resync (DS ... DE) a GI for a room already held
by the same guest changes nothing, and one held by another guest replaces
that stay: the PMS is the truth. Outside it, the receptionist's rules
apply as they are (a room checked in twice is refused, and the refusal is
logged with its reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kalliope_tel.errors import KalliopeError
from kalliope_tel.features.registry import partner_function
from kalliope_tel.pms.feature import FEATURE
from kalliope_tel.pms.fias import Record
from kalliope_tel.pms.link import when
from kalliope_tel.pms.models import PmsLink
from kalliope_tel.pms.owed import remember_alarm
from kalliope_tel.tenancy.models import Pbx

# What a FIAS class of service means when the hotel sets no map: 0 barred
# to the outside (the restricted class), anything else the standard one.
DEFAULT_CLASSES = {"0": "restricted", "1": "standard", "2": "standard", "3": "standard"}


class Unusable(KalliopeError):
    """A record that names what this PBX does not have, or lacks a field."""


@dataclass(frozen=True)
class Applied:
    what: str  # "checked_in", "nothing" ...
    room: str = ""


def _hotel(name: str) -> Callable[..., Any]:
    return partner_function(FEATURE, "hotel", name)


def _wakeup(name: str) -> Callable[..., Any]:
    return partner_function(FEATURE, "wakeup", name)


def _room(record: Record, field: str = "RN") -> str:
    room = record.get(field).strip()
    if not room:
        raise Unusable(f"{record.kind} without {field}")
    return room


def _guest(record: Record) -> str:
    return " ".join(part for part in (record.get("GF").strip(), record.get("GN").strip()) if part)


def _class(link: PmsLink, record: Record) -> str | None:
    code = record.get("CS")
    if not code:
        return None
    kind = (link.class_map or DEFAULT_CLASSES).get(code)
    if kind not in ("standard", "restricted"):
        raise Unusable(f"class of service {code!r} has no class (pms settings --class-map)")
    return kind


def apply(session: Session, pbx: Pbx, link: PmsLink, record: Record, *, resyncing: bool) -> Applied:
    kind = record.kind
    if kind == "GI":
        return _check_in(session, pbx, link, record, resyncing)
    if kind == "GO":
        room = _room(record)
        _hotel("check_out")(session, pbx, room)
        return Applied("checked_out", room)
    if kind == "GC":
        return _guest_change(session, pbx, link, record)
    if kind == "WR":
        room, due = _room(record), when(record, pbx.timezone)
        if due is None:
            raise Unusable("WR without a valid DA and TI")
        alarm = _wakeup("set_alarm")(session, pbx, room, due)
        remember_alarm(session, pbx, alarm.id, room, due)
        return Applied("alarm_set", room)
    if kind == "WC":
        room, due = _room(record), when(record, pbx.timezone)
        if due is None:
            raise Unusable("WC without a valid DA and TI")
        cancelled = _wakeup("cancel_alarms_at")(session, pbx, room, due)
        return Applied("alarm_cleared" if cancelled else "nothing", room)
    if kind == "RE":
        room, outbound = _room(record), _class(link, record)
        if outbound is None:
            return Applied("nothing", room)  # DND, message light...: not kept by this hotel
        _hotel("set_outbound")(session, pbx, room, outbound)
        return Applied("class_set", room)
    raise Unusable(f"record type {kind} is not applied")


def _check_in(session: Session, pbx: Pbx, link: PmsLink, record: Record, resyncing: bool) -> Applied:
    room, guest, outbound = _room(record), _guest(record), _class(link, record)
    if not guest:
        raise Unusable("GI without the guest's name (GN)")
    if resyncing:
        current = _hotel("occupant")(session, pbx, room)
        if current == guest:
            return Applied("nothing", room)
        if current is not None:  # the PMS has another guest there: it is the truth
            _hotel("check_out")(session, pbx, room)
    _hotel("check_in")(session, pbx, room, guest, outbound)
    return Applied("checked_in", room)


def _guest_change(session: Session, pbx: Pbx, link: PmsLink, record: Record) -> Applied:
    room, guest, outbound = _room(record), _guest(record) or None, _class(link, record)
    old = record.get("RO").strip()
    if old and old != room:
        _hotel("room_move")(session, pbx, old, room, guest)
        if outbound:
            _hotel("set_outbound")(session, pbx, room, outbound)
        return Applied("moved", room)
    _hotel("guest_change")(session, pbx, room, guest, outbound)
    return Applied("guest_changed", room)
