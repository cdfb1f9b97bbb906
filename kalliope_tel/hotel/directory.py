"""What the hotel lends the directory (``provides``): how each room is
published, and a token per PBX that moves when a stay begins or ends (a
guest's name appears or goes where the hotel publishes them).

A room is published under its room name; its guest's name only while it is
occupied and the hotel allows it (``directory_guest_names``, off by
default). Rooms are never published with personal details: the hotel's
"internal" and "public" modes both give number and name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kalliope_tel.hotel.models import HotelSettings, LdapMode, Room, Stay
from kalliope_tel.hotel.services import effective
from kalliope_tel.tenancy.models import Pbx


def rooms(session: Session, pbx: Pbx) -> dict[str, dict[str, Any]]:
    """Extension number -> {name, published, phonebook, organization, unit, guest}."""
    if not pbx.hotel_enabled:
        return {}
    settings = session.scalars(select(HotelSettings).where(HotelSettings.pbx_id == pbx.id)).first()
    guests_shown = bool(settings and settings.directory_guest_names)
    open_stays = {
        s.room_id: s for s in session.scalars(select(Stay).where(Stay.pbx_id == pbx.id, Stay.checkout_at.is_(None)))
    }
    out: dict[str, dict[str, Any]] = {}
    for room in session.scalars(select(Room).where(Room.pbx_id == pbx.id)):
        view = effective(room, {})
        stay = open_stays.get(room.id)
        out[room.extension] = {
            "name": room.name or room.extension,
            "published": view.ldap_mode != LdapMode.NONE.value,
            "phonebook": view.show_in_phonebook,
            "organization": view.building,
            "unit": view.floor,
            "guest": stay.owner if stay is not None and guests_shown else "",
        }
    return out


def tokens(session: Session) -> dict[int, str]:
    """PBX id -> a text that changes when a stay of the PBX begins or ends."""
    query = select(Stay.pbx_id, func.count(), func.max(Stay.id), func.max(Stay.checkout_at)).group_by(Stay.pbx_id)
    return {pbx_id: f"{count}:{last}:{out}" for pbx_id, count, last, out in session.execute(query)}
