"""Check-in, check-out, changes during a stay, and the reservation history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kalliope_tel.db.base import utcnow
from kalliope_tel.features.registry import partner_function
from kalliope_tel.hotel.cleaning import set_cleaning
from kalliope_tel.hotel.exceptions import InvalidValue, RoomFree, RoomOccupied
from kalliope_tel.hotel.feature import FEATURE
from kalliope_tel.hotel.models import ClassKind, CleaningSource, Stay
from kalliope_tel.hotel.services import get_room, get_settings, open_stay
from kalliope_tel.tenancy.models import Pbx


def _names(owner: str, guests: list[str]) -> tuple[str, list[str]]:
    owner = owner.strip()
    if not owner:
        raise InvalidValue("hotel.owner_needed")
    return owner, [g.strip() for g in guests if g.strip()]


def check_in(
    session: Session,
    pbx: Pbx,
    extension: str,
    owner: str,
    *,
    guests: list[str] | None = None,
    notes: str = "",
    outbound: ClassKind = ClassKind.RESTRICTED,
    alarms: list[datetime] | None = None,
    at: datetime | None = None,
) -> Stay:
    room = get_room(session, pbx, extension)
    # Lock the room row so two receptionists cannot check in the same room.
    session.execute(select(type(room).id).where(type(room).id == room.id).with_for_update())
    current = open_stay(session, room)
    if current is not None:
        since = current.checkin_at.astimezone(ZoneInfo(pbx.timezone))
        raise RoomOccupied("hotel.room_occupied", room=extension, owner=current.owner, since=f"{since:%Y-%m-%d %H:%M}")
    owner, extra = _names(owner, guests or [])
    now = at or utcnow()
    stay = Stay(
        pbx_id=pbx.id,
        room_id=room.id,
        room_extension=room.extension,
        owner=owner,
        guests=extra,
        notes=notes,
        outbound=outbound,
        checkin_at=now,
    )
    session.add(stay)
    session.flush()
    for due in alarms or []:
        # The wake-up service validates the time and ties the alarm to this stay.
        partner_function(FEATURE, "wakeup", "set_alarm")(session, pbx, extension, due)
    return stay


def current_stay(session: Session, pbx: Pbx, extension: str) -> Stay:
    stay = open_stay(session, get_room(session, pbx, extension))
    if stay is None:
        raise RoomFree("hotel.room_free", room=extension)
    return stay


def update_stay(
    session: Session,
    pbx: Pbx,
    extension: str,
    *,
    owner: str | None = None,
    guests: list[str] | None = None,
    notes: str | None = None,
    outbound: ClassKind | None = None,
) -> Stay:
    stay = current_stay(session, pbx, extension)
    if owner is not None or guests is not None:
        stay.owner, stay.guests = _names(
            owner if owner is not None else stay.owner,
            guests if guests is not None else list(stay.guests),
        )
    if notes is not None:
        stay.notes = notes
    if outbound is not None:
        stay.outbound = outbound
    session.flush()
    return stay


def check_out(session: Session, pbx: Pbx, extension: str, *, at: datetime | None = None) -> Stay:
    """Close the stay (history keeps guests and notes as they are now) and
    cancel the room's pending alarms; the room becomes dirty unless the
    hotel's ``checkout_dirty`` is off."""
    stay = current_stay(session, pbx, extension)
    stay.checkout_at = at or utcnow()
    if get_settings(session, pbx).checkout_dirty:
        set_cleaning(session, pbx, extension, False, CleaningSource.CHECKOUT)
    partner_function(FEATURE, "wakeup", "cancel_room_alarms")(session, stay.room_id)
    session.flush()
    return stay


def as_dict(stay: Stay) -> dict[str, Any]:
    """A stay as the CLI's JSON and the web's history show it."""
    return {
        "id": stay.id,
        "room": stay.room_extension,
        "owner": stay.owner,
        "guests": list(stay.guests),
        "notes": stay.notes,
        "outbound": stay.outbound.value,
        "checkin_at": stay.checkin_at.isoformat(),
        "checkout_at": stay.checkout_at.isoformat() if stay.checkout_at else None,
    }


@dataclass(frozen=True)
class HistoryFilter:
    extension: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    open_only: bool = False


def history(session: Session, pbx: Pbx, filters: HistoryFilter | None = None) -> list[Stay]:
    f = filters or HistoryFilter()
    query = select(Stay).where(Stay.pbx_id == pbx.id)
    if f.extension:
        query = query.where(Stay.room_extension == f.extension)
    if f.since:
        query = query.where(or_(Stay.checkout_at.is_(None), Stay.checkout_at >= f.since))
    if f.until:
        query = query.where(Stay.checkin_at <= f.until)
    if f.open_only:
        query = query.where(Stay.checkout_at.is_(None))
    stays = list(session.scalars(query.order_by(Stay.checkin_at.desc(), Stay.id.desc())))
    if f.text:
        needle = f.text.casefold()
        stays = [s for s in stays if needle in " ".join([s.owner, *s.guests, s.notes]).casefold()]
    return stays
