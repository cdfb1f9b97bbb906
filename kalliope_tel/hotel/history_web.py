"""The stay history in the browser, for receptionists and administrators:
current and past stays, filtered by room, text and period, with each
stay's call report when the billing feature runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from kalliope_tel.container import Container
from kalliope_tel.hotel import stays
from kalliope_tel.hotel.feature import billing_runs
from kalliope_tel.localtime import parse_local_time
from kalliope_tel.users.models import Role
from kalliope_tel.web import deps
from kalliope_tel.web.app import pbx_page

API = "/api/v1/pbx/{pbx}/stays"
LIMIT = 1000


def router(container: Container) -> APIRouter:
    r = APIRouter(tags=["hotel"])
    reports = billing_runs(container)  # the call reports are billing's

    @r.get(API)
    def stay_history(
        caller: deps.Receptionist,
        room: str | None = Query(default=None, max_length=20),
        text: str | None = Query(default=None, max_length=120),
        since: str | None = Query(default=None, max_length=40),
        until: str | None = Query(default=None, max_length=40),
        current: bool = False,
    ) -> list[dict[str, Any]]:
        """Stays, newest first: by room, by text over guests and notes, by period (PBX local time), or current only."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            filters = stays.HistoryFilter(
                extension=room or None, text=text or None, open_only=current,
                since=parse_local_time(since, pbx.timezone) if since else None,
                until=parse_local_time(until, pbx.timezone) if until else None,
            )  # fmt: skip
            return [stays.as_dict(s) for s in stays.history(session, pbx, filters)[:LIMIT]]

    @r.get("/pbx/{pbx}/stays", include_in_schema=False)
    def history_page(request: Request, pbx: str) -> Response:
        return pbx_page(request, pbx, "stays.html", Role.RECEPTIONIST, config={"reports": reports})

    return r
