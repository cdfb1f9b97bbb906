"""Meeting rooms (LAM) in the browser, for the PBX's administrators and LAM
managers: the licences and the dial-in number, and the rooms with their
owners (who may run a room's meetings without being managers). The same
services as ``kalliope-tel lam``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel.container import Container
from kalliope_tel.lam import services
from kalliope_tel.lam.models import LamRoom
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import Role, User
from kalliope_tel.users.services import list_users
from kalliope_tel.web import deps, records
from kalliope_tel.web.records import Field as F

API = "/api/v1/pbx/{pbx}/lam"

PAGE = records.page(
    records.Page(
        "admin/lam",
        "lamadmin.title",
        (
            records.Settings(
                "lam-settings",
                "lamadmin.settings",
                "/lam/settings",
                (
                    F(
                        "licences",
                        "lamadmin.licences",
                        "number",
                        True,
                        low=0,
                        high=10_000,
                        hint="lamadmin.licences_hint",
                    ),
                    F("dial_in", "lamadmin.dial_in", "tel", maxlength=8, hint="lamadmin.dial_in_hint"),
                ),
            ),
            records.Records(
                "lam-rooms",
                "lamadmin.rooms",
                "/lam/room-config",
                "name",
                (
                    F("name", "lamadmin.room", required=True, maxlength=80, fixed=True),
                    F("owners", "lamadmin.owners", "multi", choices="users"),
                ),
                intro="lamadmin.rooms_intro",
            ),
        ),
        intro="lamadmin.intro",
    )
)


class SettingsChange(BaseModel):
    licences: int | None = Field(default=None, ge=0, le=10_000)
    dial_in: str | None = Field(default=None, max_length=8)


class NewRoom(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    owners: list[str] = Field(default_factory=list, max_length=200)


class RoomChange(BaseModel):
    owners: list[str] = Field(max_length=200)


def settings_view(session: Session, pbx: Pbx) -> dict[str, Any]:
    row = services.get_settings(session, pbx)
    return {"licences": row.licences, "dial_in": row.dial_in_number}


def room_view(session: Session, room: LamRoom) -> dict[str, Any]:
    names = [session.get(User, owner.user_id) for owner in room.owners]
    return {"name": room.name, "owners": sorted(u.name for u in names if u is not None)}


def _users(session: Session, pbx: Pbx) -> dict[str, list[str]]:
    return {"users": [u.name for u in list_users(session, pbx)]}


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["lam"])

    @r.get(API + "/settings")
    def read_settings(caller: deps.Admin) -> dict[str, Any]:
        """Meeting room licences and the dial-in number."""
        with deps.unit_of_work(caller.request) as session:
            return settings_view(session, caller.pbx(session))

    @r.put(API + "/settings")
    def change_settings(caller: deps.Admin, body: SettingsChange) -> dict[str, Any]:
        """Change the licences (not below the rooms there are) or the dial-in number."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            services.update_settings(session, pbx, licences=body.licences, dial_in=body.dial_in)
            return settings_view(session, pbx)

    @r.get(API + "/room-config")
    def list_rooms(caller: deps.Admin) -> list[dict[str, Any]]:
        """Every meeting room and its owners."""
        with deps.unit_of_work(caller.request) as session:
            return [room_view(session, room) for room in services.list_rooms(session, caller.pbx(session))]

    @r.post(API + "/room-config", status_code=201)
    def add_room(caller: deps.Admin, body: NewRoom) -> dict[str, Any]:
        """Add a meeting room (one licence each) with its owners."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            room = services.create_room(session, pbx, body.name)
            if body.owners:
                room = services.set_owners(session, pbx, room.name, body.owners)
            return room_view(session, room)

    @r.patch(API + "/room-config/{name}")
    def change_room(caller: deps.Admin, name: str, body: RoomChange) -> dict[str, Any]:
        """Choose a room's owners."""
        with deps.unit_of_work(caller.request) as session:
            return room_view(session, services.set_owners(session, caller.pbx(session), name, body.owners))

    @r.delete(API + "/room-config/{name}", status_code=204)
    def remove_room(caller: deps.Admin, name: str) -> None:
        """Remove a room without upcoming meetings."""
        with deps.unit_of_work(caller.request) as session:
            services.remove_room(session, caller.pbx(session), name)

    @r.get("/pbx/{pbx}/admin/lam", include_in_schema=False)
    def page(request: Request, pbx: str) -> Response:
        return records.render(request, pbx, PAGE, Role.ADMIN, choices=records.choices(request, pbx, _users))

    return r
