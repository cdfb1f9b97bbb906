"""Personal meeting rooms: what a Plus licence gives an extension (Omnia
Manager). A room of the PBX tied to the extension (deleted with it) with a
standing meeting: its guest PIN is the extension's meeting ID, typed at the
PBX's LAM dial-in number; the moderator PIN and the videoconference link
are the owner's. Lent to Omnia through ``Feature.provides``; a personal
room does not take one of the PBX's LAM room licences (the Plus licence
pays for it)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.db.base import utcnow
from kalliope_tel.lam.links import new_instance_id
from kalliope_tel.lam.models import LamRoom, Meeting
from kalliope_tel.lam.services import _new_pins, get_settings
from kalliope_tel.tenancy.models import Pbx

STANDING = timedelta(days=3650)  # "always open": ten years, renewed when the room is opened again


def open_room(session: Session, pbx: Pbx, extension_id: int, number: str) -> dict[str, Any]:
    """The extension's personal room (made now if it has none); its meeting ID and dial-in."""
    room = session.scalars(select(LamRoom).where(LamRoom.extension_id == extension_id)).first()
    if room is None:
        room = LamRoom(pbx_id=pbx.id, name=f"personal-{number}", extension_id=extension_id)
        session.add(room)
        session.flush()
        now = utcnow()
        meeting = Meeting(
            pbx_id=pbx.id, room_id=room.id, name=f"Personal room {number}", starts_at=now, ends_at=now + STANDING,
            waiting_room=True, instance_id=new_instance_id(), uid=f"{uuid.uuid4()}@kalliope-tel", sequence=0,
        )  # fmt: skip
        _new_pins(session, pbx, meeting)
        session.add(meeting)
        session.flush()
    return details(session, pbx, [extension_id]).get(extension_id, {})


def close_room(session: Session, extension_id: int) -> None:
    """The extension is Start again: its personal room and meeting go."""
    for room in session.scalars(select(LamRoom).where(LamRoom.extension_id == extension_id)):
        session.delete(room)
    session.flush()


def details(session: Session, pbx: Pbx, extension_ids: Collection[int]) -> dict[int, dict[str, Any]]:
    """Per extension with a personal room: meeting ID (guest PIN), moderator PIN, dial-in, conference."""
    if not extension_ids:
        return {}
    rows = session.execute(
        select(LamRoom.extension_id, Meeting.guest_pin, Meeting.moderator_pin, Meeting.instance_id)
        .join(Meeting, Meeting.room_id == LamRoom.id)
        .where(LamRoom.pbx_id == pbx.id, LamRoom.extension_id.in_(list(extension_ids)))
    ).all()
    dial_in = get_settings(session, pbx).dial_in_number
    return {
        ext_id: {"meeting_id": guest, "moderator_pin": moderator, "dial_in": dial_in, "conference": instance}
        for ext_id, guest, moderator, instance in rows
        if ext_id is not None
    }
