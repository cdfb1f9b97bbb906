"""LAM in the web: the rooms a user may manage, their calendars, "Save and
Send", changes and cancellations, and one's own meeting link.

Any logged-in user of the PBX may call these routes; what they see is
decided by ``lam.services`` (administrators and LAM managers: every room;
others: the rooms they own), the same rules as the CLI's."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from kalliope_tel.container import Container
from kalliope_tel.db.base import utcnow
from kalliope_tel.lam import admin_web, invitations, services
from kalliope_tel.lam.models import Meeting
from kalliope_tel.localtime import parse_local_time
from kalliope_tel.users.models import Role
from kalliope_tel.web import deps
from kalliope_tel.web.app import pbx_page

API = "/api/v1/pbx/{pbx}/lam"
Member = Annotated[deps.Caller, Depends(deps.allow(*Role))]


class AttendeeBody(BaseModel):
    user: str = Field(default="", max_length=80)
    email: str = Field(default="", max_length=254)
    moderator: bool = False


class MeetingBody(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    # Local times in the PBX's time zone, "YYYY-MM-DD HH:MM" (or with a T).
    start: str = Field(max_length=40)
    end: str = Field(max_length=40)
    attendees: list[AttendeeBody] = Field(default_factory=list, max_length=500)
    password: str = Field(default="", max_length=64)
    waiting_room: bool = True

    def values(self, timezone: str) -> services.MeetingInput:
        return services.MeetingInput(
            name=self.name,
            starts_at=parse_local_time(self.start, timezone),
            ends_at=parse_local_time(self.end, timezone),
            attendees=[services.AttendeeInput(a.user, a.email, a.moderator) for a in self.attendees],
            password=self.password,
            waiting_room=self.waiting_room,
        )


def actor_of(caller: deps.Caller, session: Any) -> services.Actor:
    return services.Actor(caller.user(session), caller.principal.roles)


def view(meeting: Meeting, timezone: str) -> dict[str, Any]:
    return services.meeting_view(meeting, timezone)


def router(container: Container) -> APIRouter:
    r = APIRouter(tags=["lam"])
    settings = container.settings

    @r.get(API + "/rooms")
    def rooms(caller: Member) -> list[dict[str, Any]]:
        """The meeting rooms the caller manages (all of them for administrators and LAM managers)."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            return [{"name": room.name} for room in services.list_rooms(session, pbx, actor_of(caller, session))]

    @r.get(API + "/rooms/{room}/meetings")
    def room_meetings(
        caller: Member,
        room: str,
        days: int = Query(30, ge=1, le=366, description="How many days ahead (and 1 back)."),
    ) -> list[dict[str, Any]]:
        """The room's calendar: meetings from yesterday to ``days`` ahead."""
        now = utcnow()
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            found = services.meetings(
                session,
                pbx,
                room,
                actor_of(caller, session),
                since=now - timedelta(days=1),
                until=now + timedelta(days=days),
            )
            return [view(m, pbx.timezone) for m in found]

    @r.post(API + "/rooms/{room}/meetings", status_code=201)
    def save_and_send(caller: Member, room: str, body: MeetingBody) -> dict[str, Any]:
        """Save a meeting and send the invitations ("Save and Send")."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            meeting = invitations.schedule(
                session, pbx, settings, room, body.values(pbx.timezone), actor_of(caller, session)
            )
            return view(meeting, pbx.timezone)

    @r.put(API + "/meetings/{meeting_id}")
    def change(caller: Member, meeting_id: int, body: MeetingBody) -> dict[str, Any]:
        """Change a meeting; attendees get the update, removed ones a cancellation."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            values = body.values(pbx.timezone)
            meeting = invitations.reschedule(session, pbx, settings, meeting_id, values, actor_of(caller, session))
            return view(meeting, pbx.timezone)

    @r.delete(API + "/meetings/{meeting_id}")
    def cancel(caller: Member, meeting_id: int) -> dict[str, Any]:
        """Cancel a meeting; every attendee gets the cancellation."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            meeting = invitations.call_off(session, pbx, settings, meeting_id, actor_of(caller, session))
            return view(meeting, pbx.timezone)

    @r.get(API + "/meetings/{meeting_id}/link")
    def my_link(caller: Member, meeting_id: int) -> dict[str, Any]:
        """The caller's own link to a meeting of a room they manage (a moderator's, with its token)."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            meeting = services.get_meeting(session, pbx, meeting_id, actor_of(caller, session))
            user = caller.user(session)
            return {
                "meeting": meeting.id,
                "link": invitations.link_for(
                    settings, meeting, None, name=user.full_name or user.name, email=user.email
                ),
            }

    @r.get("/pbx/{pbx}/lam", include_in_schema=False)
    def lam_page(request: Request, pbx: str) -> Response:
        # Without a video site the meetings are by phone only: no Join button.
        return pbx_page(request, pbx, "lam.html", *Role, config={"video": bool(settings.lam_jitsi_url)})

    r.include_router(admin_web.router(container))
    return r
