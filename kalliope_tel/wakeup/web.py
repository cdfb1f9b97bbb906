"""Alarms in the receptionist panel: a room's alarms, adding and cancelling
them, an alarm's timeline, and the unanswered-alarm alerts with acknowledge."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from kalliope_tel.container import Container
from kalliope_tel.localtime import parse_local_time
from kalliope_tel.wakeup import admin_web, series_web, services
from kalliope_tel.wakeup import timeline as alarm_timeline
from kalliope_tel.web import deps

API = "/api/v1/pbx/{pbx}"


class NewAlarm(BaseModel):
    # Local time in the PBX's time zone, "YYYY-MM-DD HH:MM" (or with a T).
    at: str = Field(max_length=40)
    attempts: int | None = Field(default=None, ge=1, le=10)


def router(container: Container) -> APIRouter:
    r = APIRouter(tags=["wake-up"])

    @r.get(API + "/rooms/{extension}/alarms")
    def room_alarms(caller: deps.Receptionist, extension: str) -> dict[str, Any]:
        """The room's active alarms (future, in progress, unanswered) and finished ones."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            return {
                "active": [asdict(a) for a in services.list_active(session, pbx, extension)],
                "finished": [asdict(a) for a in services.list_finished(session, pbx, extension)],
            }

    @r.post(API + "/rooms/{extension}/alarms", status_code=201)
    def add_alarm(caller: deps.Receptionist, extension: str, body: NewAlarm) -> dict[str, Any]:
        """Set an alarm for the room."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            alarm = services.set_alarm(
                session, pbx, extension, parse_local_time(body.at, pbx.timezone), attempts=body.attempts
            )
            return {"id": alarm.id, "due_at": alarm.due_at.isoformat(), "state": alarm.state.value}

    @r.delete(API + "/alarms/{alarm_id}")
    def cancel_alarm(caller: deps.Receptionist, alarm_id: int, series: bool = False) -> dict[str, Any]:
        """Cancel a pending alarm (or its whole daily series)."""
        with deps.unit_of_work(caller.request) as session:
            return {"cancelled": services.cancel_alarm(session, caller.pbx(session), alarm_id, series=series)}

    @r.get(API + "/alarms/{alarm_id}/timeline")
    def timeline(caller: deps.Receptionist, alarm_id: int) -> dict[str, Any]:
        """The alarm's attempts and what happened in each."""
        with deps.unit_of_work(caller.request) as session:
            return alarm_timeline.timeline(session, caller.pbx(session), alarm_id)

    @r.get(API + "/alerts")
    def alerts(caller: deps.Receptionist) -> list[dict[str, Any]]:
        """Alarms nobody confirmed and nobody has acknowledged yet."""
        with deps.unit_of_work(caller.request) as session:
            return [asdict(a) for a in services.alerts(session, caller.pbx(session))]

    @r.post(API + "/alerts/{alarm_id}/ack")
    def acknowledge(caller: deps.Receptionist, alarm_id: int) -> dict[str, Any]:
        """Acknowledge an alert (it leaves every open panel)."""
        with deps.unit_of_work(caller.request) as session:
            alarm = services.acknowledge(session, caller.pbx(session), alarm_id, by=caller.principal.name)
            return {"id": alarm.id, "state": alarm.state.value}

    # The administrators' settings page and API, mounted with the rest of the feature's routes.
    r.include_router(admin_web.router(container))
    r.include_router(series_web.router(container))
    return r
