"""The hotel's global settings in the browser, for the PBX's administrators:
the cleaning service code, room-to-room calls, when occupied rooms become
dirty at night, whether check-out makes a room dirty, and the outbound class
of extensions that are not rooms. The same service as ``kalliope-tel hotel
settings``; what reaches Asterisk is applied by serve on its own."""

from __future__ import annotations

from datetime import time
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel.container import Container
from kalliope_tel.extensions import accounts as classes
from kalliope_tel.hotel import services
from kalliope_tel.hotel.exceptions import InvalidValue
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import Role
from kalliope_tel.web import deps
from kalliope_tel.web.app import pbx_page

API = "/api/v1/pbx/{pbx}/hotel/settings"


class SettingsChange(BaseModel):
    cleaning_code: bool | None = None
    cleaning_prefix: str | None = Field(default=None, max_length=16)
    block_room_to_room: bool | None = None
    nightly_dirty_at: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}$")
    checkout_dirty: bool | None = None
    directory_guest_names: bool | None = None
    non_room_class: str | None = Field(default=None, max_length=40)


def as_dict(session: Session, pbx: Pbx) -> dict[str, Any]:
    names = sorted(c.name for c in classes.list_classes(session, pbx))
    return services.settings_view(session, pbx) | {"classes": names}


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["hotel"])

    @r.get(API)
    def read_settings(caller: deps.Admin) -> dict[str, Any]:
        """The hotel's global settings, and the outbound classes to choose from."""
        with deps.unit_of_work(caller.request) as session:
            return as_dict(session, caller.pbx(session))

    @r.put(API)
    def change_settings(caller: deps.Admin, body: SettingsChange) -> dict[str, Any]:
        """Change the settings given (the others stay)."""
        values = body.model_dump(exclude_none=True)
        if "cleaning_code" in values:
            values["cleaning_enabled"] = values.pop("cleaning_code")
        if "nightly_dirty_at" in values:
            hours, minutes = (int(v) for v in values["nightly_dirty_at"].split(":"))
            if hours > 23 or minutes > 59:
                raise InvalidValue("hotel.bad_time", setting="nightly_dirty_at")
            values["nightly_dirty_at"] = time(hours, minutes)
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            services.update_settings(session, pbx, **values)
            return as_dict(session, pbx)

    @r.get("/pbx/{pbx}/admin/hotel", include_in_schema=False)
    def settings_page(request: Request, pbx: str) -> Response:
        return pbx_page(request, pbx, "hotel_settings.html", Role.ADMIN)

    return r
