"""The wake-up settings in the browser, for the PBX's administrators: the
caller ID and message of the calls, attempts, timings, the 1-and-9
confirmation, and how many calls at once. The same service (and limits) as
``kalliope-tel wakeup settings``; a change reaches Asterisk on its own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from kalliope_tel.container import Container
from kalliope_tel.users.models import Role
from kalliope_tel.wakeup import services
from kalliope_tel.wakeup.models import WakeupSettings
from kalliope_tel.web import deps
from kalliope_tel.web.app import pbx_page

API = "/api/v1/pbx/{pbx}/wakeup/settings"
LIMITS = services.LIMITS


class SettingsChange(BaseModel):
    enabled: bool | None = None
    name: str | None = Field(default=None, max_length=60)
    number: str | None = Field(default=None, max_length=20)
    message: str | None = Field(default=None, min_length=1, max_length=200)
    attempts: int | None = Field(default=None, ge=LIMITS["attempts"][0], le=LIMITS["attempts"][1])
    ring_timeout: int | None = Field(default=None, ge=LIMITS["ring_timeout"][0], le=LIMITS["ring_timeout"][1])
    interval: int | None = Field(default=None, ge=LIMITS["interval"][0], le=LIMITS["interval"][1])
    digit_timeout: int | None = Field(default=None, ge=LIMITS["digit_timeout"][0], le=LIMITS["digit_timeout"][1])
    max_concurrent: int | None = Field(default=None, ge=LIMITS["max_concurrent"][0], le=LIMITS["max_concurrent"][1])
    confirm_answer: bool | None = None
    confirm_listen: bool | None = None


FIELDS = list(SettingsChange.model_fields)


def as_dict(settings: WakeupSettings) -> dict[str, Any]:
    return {key: getattr(settings, key) for key in FIELDS}


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["wake-up"])

    @r.get(API)
    def read_settings(caller: deps.Admin) -> dict[str, Any]:
        """The PBX's wake-up settings."""
        with deps.unit_of_work(caller.request) as session:
            return as_dict(services.get_settings(session, caller.pbx(session)))

    @r.put(API)
    def change_settings(caller: deps.Admin, body: SettingsChange) -> dict[str, Any]:
        """Change the settings given (the others stay)."""
        with deps.unit_of_work(caller.request) as session:
            values = body.model_dump(exclude_none=True)
            return as_dict(services.update_settings(session, caller.pbx(session), **values))

    @r.get("/pbx/{pbx}/admin/wakeup", include_in_schema=False)
    def settings_page(request: Request, pbx: str) -> Response:
        limits = {key: {"min": low, "max": high} for key, (low, high) in LIMITS.items()}
        return pbx_page(request, pbx, "wakeup_settings.html", Role.ADMIN, config={"limits": limits})

    return r
