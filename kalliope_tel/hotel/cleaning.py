"""Room cleaning: by the receptionist, by the phone code, and every night."""

from __future__ import annotations

import enum
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kalliope_tel.db.base import utcnow
from kalliope_tel.hotel.models import CleaningEvent, CleaningSource, NightlyReset, Room, Stay
from kalliope_tel.hotel.services import find_room, get_room, get_settings
from kalliope_tel.tenancy.models import Pbx


def set_cleaning(session: Session, pbx: Pbx, extension: str, clean: bool, source: CleaningSource) -> Room:
    room = get_room(session, pbx, extension)
    now = utcnow()
    room.clean = clean
    room.cleaning_changed_at = now
    session.add(CleaningEvent(pbx_id=pbx.id, room_id=room.id, clean=clean, source=source, at=now))
    session.flush()
    return room


class PhoneCodeResult(enum.StrEnum):
    CLEAN = "clean"
    DIRTY = "dirty"
    NOT_A_ROOM = "not_a_room"
    BAD_DIGIT = "bad_digit"
    DISABLED = "disabled"


def cleaning_by_phone(session: Session, pbx: Pbx, caller_extension: str, digit: str) -> PhoneCodeResult:
    """``<prefix>0`` marks the calling room clean, ``<prefix>1`` dirty; nothing else changes anything."""
    if not get_settings(session, pbx).cleaning_enabled:
        return PhoneCodeResult.DISABLED
    room = find_room(session, pbx, caller_extension)
    if room is None:
        return PhoneCodeResult.NOT_A_ROOM
    if digit not in ("0", "1"):
        return PhoneCodeResult.BAD_DIGIT
    set_cleaning(session, pbx, room.extension, digit == "0", CleaningSource.PHONE)
    return PhoneCodeResult.CLEAN if digit == "0" else PhoneCodeResult.DIRTY


def nightly_reset_due(session: Session, pbx: Pbx, now: datetime) -> str | None:
    """The local date whose reset is due at ``now``, or None (not yet, or done)."""
    settings = get_settings(session, pbx)
    local = now.astimezone(ZoneInfo(pbx.timezone))
    if local.time() < settings.nightly_dirty_at:
        return None
    day = local.date().isoformat()
    done = session.scalars(
        select(NightlyReset.id).where(NightlyReset.pbx_id == pbx.id, NightlyReset.local_date == day)
    ).first()
    return None if done else day


def run_nightly_reset(session: Session, pbx: Pbx, node: str, now: datetime | None = None) -> int | None:
    """Mark every occupied room dirty, once per local day.

    The ``hotel_nightly_reset`` row is inserted first, in the same transaction
    as the update: a second node racing for the same day fails on the unique
    key and changes nothing. Returns the number of rooms, or None when another
    node (or an earlier run) did it.
    """
    now = now or utcnow()
    day = nightly_reset_due(session, pbx, now)
    if day is None:
        return None
    occupied = list(
        session.scalars(
            select(Room.id).join(Stay, Stay.room_id == Room.id).where(Room.pbx_id == pbx.id, Stay.checkout_at.is_(None))
        )
    )
    try:
        with session.begin_nested():
            session.add(NightlyReset(pbx_id=pbx.id, local_date=day, node=node, rooms=len(occupied), at=now))
            session.flush()
    except IntegrityError:
        return None
    if occupied:
        session.execute(update(Room).where(Room.id.in_(occupied)).values(clean=False, cleaning_changed_at=now))
        session.add_all(
            CleaningEvent(pbx_id=pbx.id, room_id=rid, clean=False, source=CleaningSource.NIGHTLY, at=now)
            for rid in occupied
        )
    session.flush()
    return len(occupied)
