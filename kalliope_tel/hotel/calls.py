"""Decisions the dialplan asks for on every call, through FastAGI handlers."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.extensions.accounts import list_classes
from kalliope_tel.extensions.models import OutboundClass
from kalliope_tel.hotel.models import ClassKind
from kalliope_tel.hotel.services import effective, find_room, get_settings, open_stay
from kalliope_tel.tenancy.models import Pbx


class RoomToRoom(enum.StrEnum):
    ALLOW = "allow"
    BLOCK = "block"


def room_to_room(session: Session, pbx: Pbx, caller: str, target: str) -> RoomToRoom:
    """Blocked only when the setting is on and both ends are rooms (and differ)."""
    if not get_settings(session, pbx).block_room_to_room or caller == target:
        return RoomToRoom.ALLOW
    if find_room(session, pbx, caller) is None or find_room(session, pbx, target) is None:
        return RoomToRoom.ALLOW
    return RoomToRoom.BLOCK


@dataclass(frozen=True)
class OutboundDecision:
    class_name: str
    kind: ClassKind | None  # None: the caller is not a room


def outbound_class(session: Session, pbx: Pbx, caller: str) -> OutboundDecision:
    """Free room -> its restricted class; occupied -> the class chosen at check-in;
    not a room -> the hotel's class for other extensions."""
    classes = {c.id: c for c in list_classes(session, pbx)}
    room = find_room(session, pbx, caller)
    if room is None:
        cls = classes.get(get_settings(session, pbx).non_room_class_id or -1)
        return OutboundDecision(cls.name if cls else "", None)
    view = effective(room, {i: c.name for i, c in classes.items()})
    stay = open_stay(session, room)
    kind = ClassKind.RESTRICTED if stay is None else stay.outbound
    name = view.standard_class if kind is ClassKind.STANDARD else view.restricted_class
    return OutboundDecision(name, kind)


def class_by_name(session: Session, pbx: Pbx, name: str) -> OutboundClass | None:
    return session.scalars(
        select(OutboundClass).where(OutboundClass.pbx_id == pbx.id, OutboundClass.name == name)
    ).first()


class LimitVerdict(enum.StrEnum):
    OK = "ok"
    BUSY = "busy"  # busy level reached: an incoming call gets "busy"
    LIMIT = "limit"  # calls limit reached: no further call in or out


def call_limits(session: Session, pbx: Pbx, extension: str, active_calls: int, *, incoming: bool) -> LimitVerdict:
    """Compare the room's current calls with its calls limit and busy level.

    ``active_calls`` is counted by Asterisk (GROUP_COUNT of the room's calls),
    which decrements by itself on hang-up, so no count can leak.
    """
    room = find_room(session, pbx, extension)
    if room is None:
        return LimitVerdict.OK
    view = effective(room, {})
    return limit_verdict(view.calls_limit, view.busy_level, active_calls, incoming=incoming)


def limit_verdict(calls_limit: int, busy_level: int, active_calls: int, *, incoming: bool) -> LimitVerdict:
    """0 is no limit; the busy level applies to incoming calls only."""
    if calls_limit and active_calls >= calls_limit:
        return LimitVerdict.LIMIT
    if incoming and busy_level and active_calls >= busy_level:
        return LimitVerdict.BUSY
    return LimitVerdict.OK
