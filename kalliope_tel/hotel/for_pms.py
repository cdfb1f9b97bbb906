"""What the hotel lends the PMS link (``Feature.provides``): the
receptionist's own check-in, check-out, guest change and room move, the
outbound class, and the cleaning changes to report as room status. The
PMS link asks by name and never imports the hotel's modules; the rules
(a room checked in twice is refused, check-out cancels the alarms) are the
receptionist's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.hotel import stays
from kalliope_tel.hotel.models import ClassKind, CleaningEvent, Room, Stay
from kalliope_tel.hotel.services import get_room, open_stay
from kalliope_tel.tenancy.models import Pbx


def occupant(session: Session, pbx: Pbx, extension: str) -> str | None:
    """The room's guest (its stay's owner), None when the room is free."""
    stay = open_stay(session, get_room(session, pbx, extension))
    return stay.owner if stay is not None else None


def occupied_since(session: Session, pbx: Pbx) -> dict[str, datetime]:
    """Every occupied room of the PBX and when its stay began."""
    rows = session.execute(select(Stay.room_extension, Stay.checkin_at).where(Stay.pbx_id == pbx.id,
                                                                              Stay.checkout_at.is_(None)))  # fmt: skip
    return {room: since for room, since in rows}


def check_in(session: Session, pbx: Pbx, extension: str, owner: str, outbound: str | None) -> None:
    kind = ClassKind(outbound) if outbound else ClassKind.RESTRICTED
    stays.check_in(session, pbx, extension, owner, outbound=kind)


def check_out(session: Session, pbx: Pbx, extension: str) -> None:
    stays.check_out(session, pbx, extension)


def guest_change(session: Session, pbx: Pbx, extension: str, owner: str | None, outbound: str | None) -> None:
    stays.update_stay(session, pbx, extension, owner=owner, outbound=ClassKind(outbound) if outbound else None)


def room_move(session: Session, pbx: Pbx, old: str, new: str, owner: str | None) -> None:
    """The guest moves from ``old`` to ``new``: one stay ends (its pending
    alarms cancelled, as at any check-out: the PMS hears so and sets them
    again for the new room), one begins with the same guests, notes and class."""
    stay = stays.current_stay(session, pbx, old)
    guests, notes, outbound, name = list(stay.guests), stay.notes, stay.outbound, owner or stay.owner
    stays.check_out(session, pbx, old)
    stays.check_in(session, pbx, new, name, guests=guests, notes=notes, outbound=outbound)


def set_outbound(session: Session, pbx: Pbx, extension: str, outbound: str) -> None:
    stays.update_stay(session, pbx, extension, outbound=ClassKind(outbound))


def cleaning_after(session: Session, pbx: Pbx, after_id: int, limit: int = 200) -> list[tuple[int, str, bool]]:
    """Cleaning changes after ``after_id``, oldest first: (id, room, clean)."""
    query = (
        select(CleaningEvent.id, Room.extension, CleaningEvent.clean)
        .join(Room, Room.id == CleaningEvent.room_id)
        .where(CleaningEvent.pbx_id == pbx.id, CleaningEvent.id > after_id)
        .order_by(CleaningEvent.id)
        .limit(limit)
    )
    return [(i, room, clean) for i, room, clean in session.execute(query)]


def last_cleaning(session: Session, pbx: Pbx) -> int:
    """The newest cleaning change's id (where a new link starts reporting)."""
    found = session.scalar(select(CleaningEvent.id).where(CleaningEvent.pbx_id == pbx.id)
                           .order_by(CleaningEvent.id.desc()).limit(1))  # fmt: skip
    return found or 0
