"""The receptionist panel's view of rooms: one read for the whole matrix, or
for the rooms a change touched.

Each room: where it is (building, floor), free or occupied with the guests
and notes, clean or dirty, its next alarm, its unanswered-alarm alerts and,
when billing runs, the cost of the calls since check-in.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.extensions.accounts import class_names
from kalliope_tel.features.registry import partner_function
from kalliope_tel.hotel.feature import FEATURE
from kalliope_tel.hotel.models import Room, Stay
from kalliope_tel.hotel.services import effective
from kalliope_tel.tenancy.models import Pbx


def panel_rooms(
    session: Session, pbx: Pbx, room_ids: Collection[int] | None = None, *, with_costs: bool = False
) -> list[dict[str, Any]]:
    """The rooms (all, or those of ``room_ids``), by extension. A room of
    ``room_ids`` that no longer exists comes back as ``{"id": .., "removed": true}``."""
    query = select(Room).where(Room.pbx_id == pbx.id).order_by(Room.extension)
    stays_q = select(Stay).where(Stay.pbx_id == pbx.id, Stay.checkout_at.is_(None))
    if room_ids is not None:
        ids = list(room_ids)
        query = query.where(Room.id.in_(ids))
        stays_q = stays_q.where(Stay.room_id.in_(ids))
    rooms = session.scalars(query).all()
    stays = {s.room_id: s for s in session.scalars(stays_q)}
    alarms = partner_function(FEATURE, "wakeup", "panel_alarms")(session, pbx, room_ids)
    costs = _costs(session, pbx) if with_costs and stays else {}
    names = class_names(session, pbx)
    out = []
    for room in rooms:
        view = effective(room, names, stays.get(room.id))
        mine = alarms.get(room.id, {"next_alarm": None, "alerts": []})
        out.append(
            {
                "id": room.id,
                "extension": room.extension,
                "name": room.name,
                "building": view.building,
                "floor": view.floor,
                "clean": room.clean,
                "occupied": view.occupied,
                "stay": view.stay,
                "next_alarm": mine["next_alarm"],
                "alerts": mine["alerts"],
                "cost": costs.get(room.extension),
            }
        )
    if room_ids is not None:
        seen = {r.id for r in rooms}
        out += [{"id": i, "removed": True} for i in sorted(set(room_ids) - seen)]
    return out


def _costs(session: Session, pbx: Pbx) -> dict[str, dict[str, Any]]:
    costs = partner_function(FEATURE, "billing", "occupied_costs")(session, pbx)
    return {ext: totals.as_dict() for ext, totals in costs.items()}
