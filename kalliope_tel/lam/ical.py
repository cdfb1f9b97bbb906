"""Invitations as iCalendar (RFC 5545, iTIP RFC 5546): ``METHOD:REQUEST``
for a new or changed meeting, ``METHOD:CANCEL`` when it is cancelled or an
attendee is taken off. One UID for the meeting's life and its SEQUENCE
bumped by every change: calendar clients then update or remove the event
they already have instead of adding another."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vCalAddress, vText

from kalliope_tel.lam.models import Attendee, Meeting


def _address(email: str, name: str, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["CN"] = vText(name)
    for key, value in params.items():
        address.params[key] = vText(value)
    return address


def calendar(
    meeting: Meeting,
    *,
    method: str,
    room: str,
    organizer: tuple[str, str],
    timezone: str,
    description: str,
    url: str = "",
    stamp: datetime,
) -> str:
    """The VCALENDAR of ``meeting`` (``method`` REQUEST or CANCEL), times in the PBX's ``timezone``."""
    tz = ZoneInfo(timezone)
    cal = Calendar()
    cal.add("prodid", "-//kalliope-tel//LAM//EN")
    cal.add("version", "2.0")
    cal.add("method", method)
    cal.add_component(Timezone.from_tzid(timezone))
    event = Event()
    event.add("uid", meeting.uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", meeting.starts_at.astimezone(tz))
    event.add("dtend", meeting.ends_at.astimezone(tz))
    event.add("summary", meeting.name)
    event.add("location", f"{room} (LAM)")
    event.add("description", description)
    if url:
        event.add("url", url)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("organizer", _address(organizer[0], organizer[1]))
    for attendee in meeting.attendees:
        event.add("attendee", _attendee(attendee))
    cal.add_component(event)
    return str(cal.to_ical().decode())


def _attendee(attendee: Attendee) -> vCalAddress:
    return _address(
        attendee.email,
        attendee.name,
        ROLE="CHAIR" if attendee.moderator else "REQ-PARTICIPANT",
        PARTSTAT="NEEDS-ACTION",
        RSVP="TRUE",
    )
