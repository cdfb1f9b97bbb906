"""Daily wake-up calls in the browser, for the PBX's administrators: every
room's series (time, first and last day, days left), a new one for a room,
and cancelling one. The receptionist's panel sets them room by room; this is
the whole hotel's list. The same services as ``kalliope-tel wakeup daily``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, time
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel.container import Container
from kalliope_tel.hotel.services import list_rooms
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.wakeup import series, services
from kalliope_tel.web import deps, records
from kalliope_tel.web.records import Field as F

API = "/api/v1/pbx/{pbx}/wakeup/series"

PAGE = records.page(
    records.Page(
        "admin/wakeup-daily",
        "daily.title",
        (
            records.Records(
                "series",
                "daily.title",
                "/wakeup/series",
                "series",
                (
                    F("room", "daily.room", "select", True, choices="rooms", fixed=True),
                    F("at", "daily.at", "time", True, fixed=True),
                    F("first", "daily.first", "date", True, fixed=True),
                    F("last", "daily.last", "date", True, fixed=True),
                    F("attempts", "daily.attempts", "number", low=1, high=10, fixed=True, listed=False),
                    F("days", "daily.days", "number", fixed=True, form=False),
                ),
                edit=False,
                shown="room",
            ),
        ),
        intro="daily.intro",
    )
)


class NewSeries(BaseModel):
    room: str = Field(min_length=1, max_length=20)
    at: time
    first: date
    last: date
    attempts: int | None = Field(default=None, ge=1, le=10)


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["wake-up"])

    @r.get(API)
    def list_series(caller: deps.Admin) -> list[dict[str, Any]]:
        """Every room's daily wake-up series with days still to ring."""
        with deps.unit_of_work(caller.request) as session:
            return [asdict(s) for s in series.list_series(session, caller.pbx(session))]

    @r.post(API, status_code=201)
    def add_series(caller: deps.Admin, body: NewSeries) -> dict[str, Any]:
        """A wake-up call every day from ``first`` to ``last`` at ``at`` (the PBX's time)."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            alarms = services.set_daily(session, pbx, body.room, body.at, body.first, body.last, attempts=body.attempts)
            made = alarms[0].series
            return next(asdict(s) for s in series.list_series(session, pbx) if s.series == made)

    @r.delete(API + "/{series_id}", status_code=204)
    def cancel_series(caller: deps.Admin, series_id: str) -> None:
        """Cancel the series' days still to ring (a call ringing now ends on its own)."""
        with deps.unit_of_work(caller.request) as session:
            series.cancel_series(session, caller.pbx(session), series_id)

    @r.get("/pbx/{pbx}/admin/wakeup-daily", include_in_schema=False)
    def page(request: Request, pbx: str) -> Response:
        return records.render(request, pbx, PAGE, choices=records.choices(request, pbx, _rooms))

    return r


def _rooms(session: Session, pbx: Pbx) -> dict[str, list[str]]:
    return {"rooms": [room.extension for room in list_rooms(session, pbx)]}
