"""The receptionist panel: its page, the rooms API and the live event stream.

Thin adapters over ``hotel.panel``, ``hotel.stays`` and ``hotel.cleaning``;
who may call them is decided by ``web.deps`` (receptionists and
administrators of the PBX in the path).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse

from kalliope_tel.container import Container
from kalliope_tel.hotel import admin_web, cleaning, history_web, panel, rooms_web, stays, templates_web
from kalliope_tel.hotel.feature import billing_runs
from kalliope_tel.hotel.models import ClassKind, CleaningSource
from kalliope_tel.hotel.services import RoomFilter, get_room
from kalliope_tel.localtime import parse_local_time
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import Role
from kalliope_tel.web import access, deps
from kalliope_tel.web.app import pbx_page

API = "/api/v1/pbx/{pbx}"
# An event stream says something at least this often (proxies close idle ones).
KEEPALIVE_SECONDS = 15
# How often an open stream checks that its session still holds.
REVALIDATE_SECONDS = 30.0


class CheckIn(BaseModel):
    owner: str = Field(min_length=1, max_length=120)
    guests: list[str] = Field(default_factory=list, max_length=20)
    notes: str = Field(default="", max_length=2000)
    outbound: ClassKind = ClassKind.RESTRICTED
    # Local times in the PBX's time zone, "YYYY-MM-DD HH:MM" (or with a T).
    alarms: list[str] = Field(default_factory=list, max_length=20)


class StayChange(BaseModel):
    owner: str | None = Field(default=None, max_length=120)
    guests: list[str] | None = Field(default=None, max_length=20)
    notes: str | None = Field(default=None, max_length=2000)
    outbound: ClassKind | None = None


class Cleaning(BaseModel):
    clean: bool


def local_times(values: list[str], timezone: str) -> list[datetime]:
    return [parse_local_time(v, timezone) for v in values]


def router(container: Container) -> APIRouter:
    r = APIRouter(tags=["hotel"])
    costs = billing_runs(container)

    def one_room(caller: deps.Caller, extension: str) -> dict[str, Any]:
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            room = get_room(session, pbx, extension)
            return panel.panel_rooms(session, pbx, [room.id], with_costs=costs)[0]

    @r.get(API + "/rooms")
    def rooms(
        caller: deps.Receptionist,
        building: str | None = Query(None, max_length=100),
        floor: str | None = Query(None, max_length=100),
        clean: bool | None = None,
        occupied: bool | None = None,
        text: str | None = Query(None, max_length=100),
    ) -> list[dict[str, Any]]:
        """The panel's rooms, filtered (building, floor, cleanliness, occupancy, text over guests and notes)."""
        filters = RoomFilter(building, floor, clean, occupied, text)
        with deps.unit_of_work(caller.request) as session:
            rows = panel.panel_rooms(session, caller.pbx(session), with_costs=costs)
        return [r for r in rows if filters.matches(r["building"], r["floor"], r["clean"], r["occupied"], r["stay"])]

    @r.get(API + "/rooms/{extension}")
    def room(caller: deps.Receptionist, extension: str) -> dict[str, Any]:
        """One room as the panel shows it."""
        return one_room(caller, extension)

    @r.post(API + "/rooms/{extension}/checkin", status_code=201)
    def check_in(caller: deps.Receptionist, extension: str, body: CheckIn) -> dict[str, Any]:
        """Check a guest in (owner required; more guests, notes, outbound class, alarms)."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            stays.check_in(
                session, pbx, extension, body.owner, guests=body.guests, notes=body.notes,
                outbound=body.outbound, alarms=local_times(body.alarms, pbx.timezone),
            )  # fmt: skip
        return one_room(caller, extension)

    @r.patch(API + "/rooms/{extension}/stay")
    def change_stay(caller: deps.Receptionist, extension: str, body: StayChange) -> dict[str, Any]:
        """Change the current stay's guests, notes or outbound class."""
        with deps.unit_of_work(caller.request) as session:
            stays.update_stay(
                session, caller.pbx(session), extension, owner=body.owner, guests=body.guests,
                notes=body.notes, outbound=body.outbound,
            )  # fmt: skip
        return one_room(caller, extension)

    @r.post(API + "/rooms/{extension}/checkout")
    def check_out(caller: deps.Receptionist, extension: str) -> dict[str, Any]:
        """Check the room out (its pending alarms are cancelled)."""
        with deps.unit_of_work(caller.request) as session:
            stays.check_out(session, caller.pbx(session), extension)
        return one_room(caller, extension)

    @r.put(API + "/rooms/{extension}/cleaning")
    def set_cleaning(caller: deps.Receptionist, extension: str, body: Cleaning) -> dict[str, Any]:
        """Mark the room clean or dirty."""
        with deps.unit_of_work(caller.request) as session:
            cleaning.set_cleaning(session, caller.pbx(session), extension, body.clean, CleaningSource.OPERATOR)
        return one_room(caller, extension)

    @r.get(API + "/events")
    async def events(request: Request, caller: deps.Receptionist) -> EventSourceResponse:
        """Server-sent events: ``rooms`` (the changed rooms, as ``/rooms`` shows
        them) whenever one changes, from any source on any node; ``resync``
        when this stream fell behind (reload the rooms)."""
        hub = request.app.state.hub
        if hub is None:
            return EventSourceResponse(_nothing(), ping=KEEPALIVE_SECONDS)
        sub = hub.subscribe(caller.pbx_id)
        return EventSourceResponse(_stream(request, sub, caller), ping=KEEPALIVE_SECONDS)

    async def _stream(request: Request, sub: Any, caller: deps.Caller) -> AsyncIterator[dict[str, str]]:
        token = request.cookies.get(deps.SESSION_COOKIE, "")
        checked = time.monotonic()
        try:
            yield {"event": "ready", "data": "{}"}
            while True:
                try:
                    batch = await asyncio.wait_for(sub.queue.get(), REVALIDATE_SECONDS)
                except TimeoutError:
                    batch = None
                if time.monotonic() - checked >= REVALIDATE_SECONDS:
                    # An open stream must not outlive its session: logged out,
                    # password changed, role taken away, or expired.
                    if not await asyncio.to_thread(_still_allowed, caller, token):
                        yield {"event": "logout", "data": "{}"}
                        return
                    checked = time.monotonic()
                if batch is None:
                    continue
                if sub.overflowed:
                    sub.overflowed = False
                    while not sub.queue.empty():
                        sub.queue.get_nowait()
                    yield {"event": "resync", "data": "{}"}
                    continue
                data = await batch.once("panel", lambda b=batch: asyncio.to_thread(_render, caller, b.room_ids))
                yield {"event": "rooms", "data": data}
        finally:
            sub.close()

    def _still_allowed(caller: deps.Caller, token: str) -> bool:
        with deps.unit_of_work(caller.request) as session:
            principal = access.resolve(session, token)
        seated = principal.at(caller.principal.pbx_slug) if principal is not None else None
        return seated is not None and seated.may(Role.RECEPTIONIST)

    def _render(caller: deps.Caller, room_ids: frozenset[int]) -> str:
        with deps.unit_of_work(caller.request) as session:
            rows = panel.panel_rooms(session, caller.pbx(session), room_ids, with_costs=costs)
        return json.dumps(rows, separators=(",", ":"))

    @r.get("/pbx/{pbx}/panel", include_in_schema=False)
    def panel_page(request: Request, pbx: str) -> Response:
        return pbx_page(request, pbx, "panel.html", Role.RECEPTIONIST, config={"costs": costs})

    # The administrators' settings page and API, mounted with the rest of the feature's routes.
    r.include_router(admin_web.router(container))
    r.include_router(rooms_web.router(container))
    r.include_router(history_web.router(container))
    r.include_router(templates_web.router(container))
    # Every page and route of the hotel exists only for PBXs that have the module.
    gated = APIRouter(dependencies=[Depends(hotel_on)])
    gated.include_router(r)
    return gated


def hotel_on(request: Request, pbx: Annotated[str, Path(max_length=40)]) -> None:
    """404 for the hotel's pages and routes of a PBX without the module. Only
    for a caller seated in that PBX: anyone else gets the route's own
    refusal, which says nothing of another PBX's modules."""
    principal = deps.current_principal(request)
    if principal is None or principal.at(pbx) is None:
        return
    with deps.unit_of_work(request, writes=False) as session:
        enabled = session.scalars(select(Pbx.hotel_enabled).where(Pbx.slug == pbx)).first()
    if enabled is False:
        raise deps.Refusal(404, "hotel.module_off")


async def _nothing() -> AsyncIterator[dict[str, str]]:
    yield {"event": "ready", "data": "{}"}
    await asyncio.Event().wait()
