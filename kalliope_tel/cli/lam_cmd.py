"""``kalliope-tel lam``: meeting rooms, meetings (saved and sent), links."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import STATE, done, print_json, print_table, run_in_pbx
from kalliope_tel.localtime import parse_local_time

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.lam import invitations, services
    from kalliope_tel.tenancy.models import Pbx
else:
    from kalliope_tel.lazy import LazyModule

    services = LazyModule("kalliope_tel.lam.services")
    invitations = LazyModule("kalliope_tel.lam.invitations")

app = typer.Typer(help="LAM meeting rooms: rooms, meetings with invitations, links.", no_args_is_help=True)
rooms_app = typer.Typer(help="Licensed meeting rooms and their owners.", no_args_is_help=True)
meetings_app = typer.Typer(help="Meetings: saved and sent (invitations with iCalendar).", no_args_is_help=True)
app.add_typer(rooms_app, name="rooms")
app.add_typer(meetings_app, name="meetings")
JSON = typer.Option(False, "--json", help="Machine-readable output.")


@app.callback()
def lam_main(pbx: str = typer.Option(None, "--pbx", help="PBX slug (default: the default PBX).")) -> None:
    STATE.pbx_slug = pbx


@app.command("settings")
def settings_cmd(
    licences: int | None = typer.Option(None, help="Licensed rooms of this PBX."),
    dial_in: str | None = typer.Option(None, "--dial-in", help="Extension or DID of the phone dial-in ('' : none)."),
    as_json: bool = JSON,
) -> None:
    """Show or change the PBX's LAM settings ('asterisk apply' puts the dial-in number in the dialplan)."""

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        row = services.update_settings(session, pbx, licences=licences, dial_in=dial_in)
        return {"licences": row.licences, "dial_in": row.dial_in_number}

    data = run_in_pbx(work)
    done(f"LAM: {data['licences']} room licence(s), dial-in {data['dial_in'] or '(none)'}", data, as_json)


@rooms_app.command("add")
def rooms_add(name: str, owner: list[str] = typer.Option([], "--owner", help="A user who manages it (repeatable)."),
              as_json: bool = JSON) -> None:  # fmt: skip
    """Add a meeting room (one licence each)."""

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        services.create_room(session, pbx, name)
        room = services.set_owners(session, pbx, name, owner) if owner else services.get_room(session, pbx, name)
        return {"room": room.name, "owners": owner}

    done(f"meeting room {name} added", run_in_pbx(work), as_json)


@rooms_app.command("owners")
def rooms_owners(name: str, users: list[str] = typer.Argument(..., help="User names."), as_json: bool = JSON) -> None:
    """Set the room's owners (they schedule its meetings)."""
    run_in_pbx(lambda s, p: services.set_owners(s, p, name, users))
    done(f"meeting room {name}: owners {', '.join(users)}", {"room": name, "owners": users}, as_json)


@rooms_app.command("list")
def rooms_list(as_json: bool = JSON) -> None:
    """Meeting rooms, their owners and upcoming meetings."""

    def work(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
        from kalliope_tel.db.base import utcnow
        from kalliope_tel.users.models import User

        names = {u.id: u.name for u in session.query(User).filter(User.pbx_id == pbx.id)}
        return [
            {
                "room": r.name,
                "owners": sorted(names.get(o.user_id, "?") for o in r.owners),
                "upcoming": len(services.meetings(session, pbx, r.name, since=utcnow())),
            }
            for r in services.list_rooms(session, pbx)
        ]

    rows = run_in_pbx(work)
    if as_json:
        print_json(rows)
    else:
        print_table("meeting rooms", ["room", "owners", "upcoming"], [[r["room"], ", ".join(r["owners"]), r["upcoming"]]
                                                                      for r in rows])  # fmt: skip


@rooms_app.command("remove")
def rooms_remove(name: str, as_json: bool = JSON) -> None:
    """Remove a meeting room (none of its meetings may be upcoming)."""
    run_in_pbx(lambda s, p: services.remove_room(s, p, name))
    done(f"meeting room {name} removed", {"removed": name}, as_json)


def _values(name: str, start: str, end: str, attendee: list[str], moderator: list[str], password: str,
            waiting_room: bool, tz: str) -> Any:  # fmt: skip
    people = [(a, False) for a in attendee] + [(m, True) for m in moderator]
    return services.MeetingInput(
        name=name,
        starts_at=parse_local_time(start, tz),
        ends_at=parse_local_time(end, tz),
        attendees=[
            services.AttendeeInput(email=who, moderator=mod)
            if "@" in who
            else services.AttendeeInput(user=who, moderator=mod)
            for who, mod in people
        ],
        password=password,
        waiting_room=waiting_room,
    )


START = typer.Option(..., "--start", help="'YYYY-MM-DD HH:MM' in the PBX's time zone.")
END = typer.Option(..., "--end", help="'YYYY-MM-DD HH:MM' in the PBX's time zone.")
ATTENDEE = typer.Option([], "--attendee", help="A user name or an e-mail address (repeatable).")
MODERATOR = typer.Option([], "--moderator", help="As --attendee, a moderator (their link carries a token).")
PASSWORD = typer.Option("", "--password", help="Meeting password (optional).")
WAITING = typer.Option(True, "--waiting-room/--no-waiting-room", help="Guests wait for a moderator (default on).")


@meetings_app.command("add")
def meetings_add(room: str, name: str = typer.Option(..., "--name"), start: str = START, end: str = END,
                 attendee: list[str] = ATTENDEE, moderator: list[str] = MODERATOR, password: str = PASSWORD,
                 waiting_room: bool = WAITING, as_json: bool = JSON) -> None:  # fmt: skip
    """Save a meeting and send the invitations (serve mails them)."""
    settings = STATE.settings

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        values = _values(name, start, end, attendee, moderator, password, waiting_room, pbx.timezone)
        return services.meeting_view(invitations.schedule(session, pbx, settings, room, values), pbx.timezone)

    data = run_in_pbx(work)
    message = (f"meeting {data['id']} saved; {len(data['attendees'])} invitation(s) to send; "
               f"dial-in PIN {data['guest_pin']} (moderators {data['moderator_pin']})")  # fmt: skip
    done(message, data, as_json)


@meetings_app.command("update")
def meetings_update(meeting_id: int, name: str = typer.Option(..., "--name"), start: str = START, end: str = END,
                    attendee: list[str] = ATTENDEE, moderator: list[str] = MODERATOR, password: str = PASSWORD,
                    waiting_room: bool = WAITING, as_json: bool = JSON) -> None:  # fmt: skip
    """Change a meeting (all of it): attendees get the update, removed ones a cancellation."""
    settings = STATE.settings

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        values = _values(name, start, end, attendee, moderator, password, waiting_room, pbx.timezone)
        return services.meeting_view(invitations.reschedule(session, pbx, settings, meeting_id, values), pbx.timezone)

    done(f"meeting {meeting_id} updated; the invitations go out again", run_in_pbx(work), as_json)


@meetings_app.command("cancel")
def meetings_cancel(meeting_id: int, as_json: bool = JSON) -> None:
    """Cancel a meeting: every attendee gets the cancellation."""
    settings = STATE.settings
    data = run_in_pbx(lambda s, p: services.meeting_view(invitations.call_off(s, p, settings, meeting_id), p.timezone))
    done(f"meeting {meeting_id} cancelled", data, as_json)


@meetings_app.command("list")
def meetings_list(room: str, cancelled: bool = typer.Option(False, "--cancelled", help="Cancelled ones too."),
                  as_json: bool = JSON) -> None:  # fmt: skip
    """The room's calendar (upcoming and past)."""
    rows = run_in_pbx(
        lambda s, p: [services.meeting_view(m, p.timezone) for m in services.meetings(s, p, room, cancelled=cancelled)]
    )
    if as_json:
        print_json(rows)
    else:
        columns = ["id", "name", "starts", "ends", "state", "attendees"]
        keys = ["id", "name", "starts_at", "ends_at", "state"]
        print_table(f"meetings of {room}", columns, [[*(r[k] for k in keys), len(r["attendees"])] for r in rows])


@app.command("link")
def link_cmd(meeting_id: int, as_user: str = typer.Option(..., "--as", help="A user name or an attendee's address."),
             as_json: bool = JSON) -> None:  # fmt: skip
    """The meeting link for someone: moderators (moderator attendees, the room's
    owners) get a token valid only in the meeting's window."""
    from kalliope_tel.errors import KalliopeError
    from kalliope_tel.lam.models import Attendee, LamRoom
    from kalliope_tel.users.services import find_user

    settings = STATE.settings
    if not settings.lam_jitsi_url:
        raise KalliopeError("no Jitsi site is set (lam_jitsi_url)")

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        meeting = services.get_meeting(session, pbx, meeting_id)
        user = find_user(session, pbx, as_user)
        email = user.email if user else as_user
        attendee = next((a for a in meeting.attendees if a.email == email), None)
        room = session.get(LamRoom, meeting.room_id)
        owner = user is not None and room is not None and any(o.user_id == user.id for o in room.owners)
        if attendee is None and not owner:
            raise KalliopeError(f"{as_user} is neither invited to meeting {meeting_id} nor an owner of its room")
        if owner and (attendee is None or not attendee.moderator):
            attendee = Attendee(email=email, name=user.full_name or user.name if user else "", moderator=True)
        link = invitations.link_for(settings, meeting, attendee)
        return {"meeting": meeting.id, "for": email, "moderator": bool(attendee and attendee.moderator), "link": link}

    data = run_in_pbx(work)
    if as_json:
        print_json(data)
    else:
        print(data["link"])
