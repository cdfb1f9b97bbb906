"""The hotel's per-call decisions, one Core query each, for FastAGI handlers.

``hotel.calls`` answers the same questions through the ORM (and stays the
reference: the tests compare both on the same rows). Here each answer is
one SELECT on the ``HotReader``'s long-lived autocommit connection: no
session, no pool checkout, no transaction, and on SQLite no thread hop.
Profiling ``bench agi --handler hotel-outbound-class`` showed the ORM path
spending most of a request's CPU in session set-up, identity-map loads of
room, template, settings and classes, and the thread hand-off; the answer
needs two or three columns.

The statements are built once, at import, with bound parameters: building
them per call (ORM aliases adapted every time) cost 2 ms per outbound-class
answer; executing a prebuilt one hits SQLAlchemy's compiled cache.

A room's value is its own, else its template's (``services.effective``);
a PBX without a settings row has the model's defaults.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Integer,
    Row,
    String,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased

from kalliope_tel.changes import record as changes
from kalliope_tel.db.base import utcnow
from kalliope_tel.extensions.models import OutboundClass
from kalliope_tel.hotel.calls import LimitVerdict, RoomToRoom, limit_verdict
from kalliope_tel.hotel.cleaning import PhoneCodeResult
from kalliope_tel.hotel.models import (
    ClassKind,
    CleaningEvent,
    CleaningSource,
    HotelSettings,
    Room,
    RoomTemplate,
    Stay,
)
from kalliope_tel.tenancy.exceptions import PbxNotFound
from kalliope_tel.tenancy.models import DEFAULT_PBX_SLUG, Pbx

_SLUG = bindparam("slug", type_=String)
# The PBX named by slug, or the default one when slug is NULL.
_THE_PBX = or_(and_(_SLUG.is_(None), Pbx.is_default.is_(True)), Pbx.slug == _SLUG)
_CALLER = bindparam("caller", type_=String)
_TARGET = bindparam("target", type_=String)


def _is_room(extension: Any) -> Any:
    return exists().where(Room.pbx_id == Pbx.id, Room.extension == extension)


_ROOM_TO_ROOM = (
    select(HotelSettings.block_room_to_room, _is_room(_CALLER), _is_room(_TARGET))
    .select_from(Pbx)
    .outerjoin(HotelSettings, HotelSettings.pbx_id == Pbx.id)
    .where(_THE_PBX)
)
_LIMITS = (
    select(
        Room.id,
        func.coalesce(Room.calls_limit, RoomTemplate.calls_limit, literal(0)),
        func.coalesce(Room.busy_level, RoomTemplate.busy_level, literal(0)),
    )
    .select_from(Pbx)
    .outerjoin(Room, and_(Room.pbx_id == Pbx.id, Room.extension == _CALLER))
    .outerjoin(RoomTemplate, RoomTemplate.id == Room.template_id)
    .where(_THE_PBX)
)
_STANDARD, _RESTRICTED, _OTHER = aliased(OutboundClass), aliased(OutboundClass), aliased(OutboundClass)
_OPEN_STAY = (
    select(Stay.outbound)
    .where(Stay.room_id == Room.id, Stay.checkout_at.is_(None))
    .order_by(Stay.id)
    .limit(1)
    .scalar_subquery()
)
_OUTBOUND = (
    select(Room.id, _STANDARD.name, _RESTRICTED.name, _OPEN_STAY, _OTHER.name)
    .select_from(Pbx)
    .outerjoin(Room, and_(Room.pbx_id == Pbx.id, Room.extension == _CALLER))
    .outerjoin(RoomTemplate, RoomTemplate.id == Room.template_id)
    .outerjoin(_STANDARD, _STANDARD.id == func.coalesce(Room.standard_class_id, RoomTemplate.standard_class_id))
    .outerjoin(_RESTRICTED, _RESTRICTED.id == func.coalesce(Room.restricted_class_id, RoomTemplate.restricted_class_id))
    .outerjoin(HotelSettings, HotelSettings.pbx_id == Pbx.id)
    .outerjoin(_OTHER, _OTHER.id == HotelSettings.non_room_class_id)
    .where(_THE_PBX)
)


def _one(conn: Connection, query: Any, slug: str | None, **params: str) -> Row[Any]:
    """The PBX's row (every query starts FROM pbx): an unknown PBX raises,
    as the ORM path does, so the handler reports FAILED."""
    row: Row[Any] | None = conn.execute(query, {"slug": slug, **params}).first()
    if row is None:
        raise PbxNotFound(slug or DEFAULT_PBX_SLUG)
    return row


def room_to_room(conn: Connection, slug: str | None, caller: str, target: str) -> RoomToRoom:
    """As ``calls.room_to_room``: blocked when the setting is on and both ends are different rooms."""
    blocking, caller_is_room, target_is_room = tuple(_one(conn, _ROOM_TO_ROOM, slug, caller=caller, target=target))
    if not blocking or caller == target or not caller:  # no settings row: the default (off)
        return RoomToRoom.ALLOW
    return RoomToRoom.BLOCK if caller_is_room and target_is_room else RoomToRoom.ALLOW


def call_limits(
    conn: Connection, slug: str | None, extension: str, active_calls: int, *, incoming: bool
) -> LimitVerdict:
    """As ``calls.call_limits``."""
    room_id, calls_limit, busy_level = tuple(_one(conn, _LIMITS, slug, caller=extension))
    if room_id is None:
        return LimitVerdict.OK  # not a room
    return limit_verdict(int(calls_limit), int(busy_level), active_calls, incoming=incoming)


def outbound_class(conn: Connection, slug: str | None, caller: str) -> str:
    """As ``calls.outbound_class(...).class_name``: free room -> restricted,
    occupied -> the class chosen at check-in, not a room -> the hotel's class
    for other extensions ("" : none; the dialplan refuses the call)."""
    room_id, standard, restricted, stay, other = tuple(_one(conn, _OUTBOUND, slug, caller=caller))
    if room_id is None or not caller:
        return str(other or "")
    kind = ClassKind(stay) if stay is not None else ClassKind.RESTRICTED
    return str((standard if kind is ClassKind.STANDARD else restricted) or "")


_CLEANING = (
    select(Pbx.id, HotelSettings.cleaning_enabled, Room.id)
    .select_from(Pbx)
    .outerjoin(HotelSettings, HotelSettings.pbx_id == Pbx.id)
    .outerjoin(Room, and_(Room.pbx_id == Pbx.id, Room.extension == _CALLER))
    .where(_THE_PBX)
)
_SET_CLEAN = (
    update(Room)
    .where(Room.id == bindparam("room_id", type_=Integer))
    .values(clean=bindparam("clean", type_=Boolean), cleaning_changed_at=bindparam("at"))
)
_CLEANING_EVENT = insert(CleaningEvent).values(
    pbx_id=bindparam("pbx_id", type_=Integer),
    room_id=bindparam("room_id", type_=Integer),
    clean=bindparam("clean", type_=Boolean),
    source=CleaningSource.PHONE,
    at=bindparam("at"),
)


def cleaning_by_phone(
    conn: Connection, slug: str | None, caller: str, digit: str, now: datetime | None = None
) -> PhoneCodeResult:
    """As ``cleaning.cleaning_by_phone``, in the caller's transaction (``HotReader.write``):
    ``<prefix>0`` marks the calling room clean, ``<prefix>1`` dirty."""
    pbx_id, enabled, room_id = tuple(_one(conn, _CLEANING, slug, caller=caller))
    if enabled is not None and not enabled:  # no settings row: the default (on)
        return PhoneCodeResult.DISABLED
    if room_id is None or not caller:
        return PhoneCodeResult.NOT_A_ROOM
    if digit not in ("0", "1"):
        return PhoneCodeResult.BAD_DIGIT
    values = {"room_id": room_id, "clean": digit == "0", "at": now or utcnow(), "pbx_id": pbx_id}
    conn.execute(_SET_CLEAN, values)
    conn.execute(_CLEANING_EVENT, values)
    changes.record_rooms(conn, [(pbx_id, room_id)])
    return PhoneCodeResult.CLEAN if digit == "0" else PhoneCodeResult.DIRTY
