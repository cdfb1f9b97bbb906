"""Invitation mails: owed as rows in the transaction that changes the
meeting, sent by any node's job, each exactly once.

Each attendee gets their own mail: their link (a moderator's carries their
token), the dial-in number with their PIN, and the calendar (inline
``text/calendar; method=...`` as calendar clients expect, and as an .ics
attachment)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kalliope_tel.backoff import Backoff
from kalliope_tel.config import Settings
from kalliope_tel.db import leases
from kalliope_tel.db.base import utcnow
from kalliope_tel.lam import ical, links
from kalliope_tel.lam.models import Attendee, Invitation, InvitationKind, InvitationState, LamRoom, Meeting
from kalliope_tel.lam.services import (
    ADMIN,
    Actor,
    MeetingInput,
    cancel_meeting,
    create_meeting,
    get_settings,
    update_meeting,
)
from kalliope_tel.mail.compose import message
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import User

MAX_TRIES = 8
# One invitation is claimed at a time, and its send is cut at SEND_SECONDS,
# well within the lease: no other node takes it while it is being sent (20
# claimed at once under one lease let a slow server's last ones go twice).
LEASE = timedelta(minutes=2)
SEND_SECONDS = 45.0
RETRIES = Backoff(first=30, cap=3600)


def site_of(settings: Settings) -> links.JitsiSite | None:
    if not settings.lam_jitsi_url:
        return None
    return links.JitsiSite(
        settings.lam_jitsi_url,
        settings.lam_jitsi_app_id,
        settings.lam_jitsi_secret.get_secret_value(),
        timedelta(minutes=settings.lam_link_margin_minutes),
    )


def link_for(
    settings: Settings, meeting: Meeting, attendee: Attendee | None, *, name: str = "", email: str = ""
) -> str:
    """The attendee's link: moderators' carry a token bounded by the meeting."""
    site = site_of(settings)
    if site is None:
        return ""
    token = None
    if attendee is None or attendee.moderator:
        token = links.moderator_token(
            site, meeting.instance_id, meeting.starts_at, meeting.ends_at,
            name=(attendee.name if attendee else name) or email, email=attendee.email if attendee else email,
        )  # fmt: skip
    return links.meeting_link(site, meeting.instance_id, token)


def _organizer(session: Session, meeting: Meeting, settings: Settings) -> tuple[str, str]:
    user = session.get(User, meeting.organizer_id) if meeting.organizer_id else None
    return (user.email, user.full_name or user.name) if user else (settings.mail_from, "kalliope-tel")


def owe(
    session: Session,
    pbx: Pbx,
    meeting: Meeting,
    settings: Settings,
    *,
    kind: InvitationKind = InvitationKind.REQUEST,
    only: list[str] | None = None,
    removed: list[str] | None = None,
) -> int:
    """Owe one mail per attendee (or per address of ``only``); ``removed``
    addresses get a cancellation. Returns how many mails are owed."""
    room = session.get(LamRoom, meeting.room_id)
    assert room is not None
    lam = get_settings(session, pbx)
    tz = ZoneInfo(pbx.timezone)
    organizer = _organizer(session, meeting, settings)
    stamp = utcnow()
    owed = 0
    targets = [a for a in meeting.attendees if only is None or a.email in only]
    for attendee in targets:
        owed += _owe_one(session, pbx, meeting, room, attendee, attendee.email, kind, settings, lam.dial_in_number,
                         tz, organizer, stamp)  # fmt: skip
    for email in removed or []:
        owed += _owe_one(session, pbx, meeting, room, None, email, InvitationKind.CANCEL, settings, "",
                         tz, organizer, stamp)  # fmt: skip
    session.flush()
    return owed


def _owe_one(
    session: Session, pbx: Pbx, meeting: Meeting, room: LamRoom, attendee: Attendee | None, email: str,
    kind: InvitationKind, settings: Settings, dial_in: str, tz: ZoneInfo, organizer: tuple[str, str], stamp: datetime,
) -> int:  # fmt: skip
    cancel = kind is InvitationKind.CANCEL
    when = f"{meeting.starts_at.astimezone(tz):%Y-%m-%d %H:%M}-{meeting.ends_at.astimezone(tz):%H:%M} ({pbx.timezone})"
    link = "" if cancel or attendee is None else link_for(settings, meeting, attendee)
    lines = [f"{meeting.name}", f"Room: {room.name}", f"When: {when}"]
    if cancel:
        lines.insert(0, "This meeting is cancelled." if attendee is not None or meeting.state.value == "cancelled"
                     else "You are no longer invited to this meeting.")  # fmt: skip
    else:
        if link:
            lines.append(f"Join: {link}")
        if meeting.password:
            lines.append(f"Password: {meeting.password}")
        if dial_in and attendee is not None:
            pin = meeting.moderator_pin if attendee.moderator else meeting.guest_pin
            lines.append(f"By phone: call {dial_in} and type {pin}")
        if meeting.waiting_room:
            lines.append("Guests wait until a moderator lets them in.")
    description = "\n".join(lines)
    ics = ical.calendar(
        meeting, method="CANCEL" if cancel else "REQUEST", room=room.name, organizer=organizer,
        timezone=pbx.timezone, description=description, url=link, stamp=stamp,
    )  # fmt: skip
    prefix = "Cancelled: " if cancel else ("Updated: " if meeting.sequence else "Invitation: ")
    session.add(
        Invitation(
            pbx_id=pbx.id, meeting_id=meeting.id, email=email, kind=kind, sequence=meeting.sequence, ics=ics,
            subject=(prefix + meeting.name)[:200], body=description,
        )
    )  # fmt: skip
    return 1


def compose(settings: Settings, invitation: Invitation) -> EmailMessage:
    method = "CANCEL" if invitation.kind is InvitationKind.CANCEL else "REQUEST"
    msg = message(settings.mail_from, invitation.email, invitation.subject, invitation.body)
    msg.add_alternative(invitation.ics, subtype="calendar", params={"method": method})
    msg.add_attachment(invitation.ics.encode(), maintype="application", subtype="ics", filename="invite.ics")
    return msg


@dataclass(frozen=True)
class Claimed:
    id: int
    message: EmailMessage


def claim(
    session: Session, settings: Settings, node: str, limit: int = 20, now: datetime | None = None
) -> list[Claimed]:
    now = now or utcnow()
    due = [Invitation.state == InvitationState.PENDING, Invitation.next_at <= now]
    rows = leases.claim(session, Invitation, due, [Invitation.id], limit, node, LEASE, now)
    return [Claimed(row.id, compose(settings, row)) for row in rows]


def finish(session: Session, invitation_id: int, node: str, error: str | None, *, permanent: bool = False) -> bool:
    """Record ``node``'s send; False when the claim is no longer its own."""
    row = leases.held(session, Invitation, invitation_id, node)
    if row is None or row.state is not InvitationState.PENDING:
        return False
    leases.release(row)
    if error is None:
        row.state, row.sent_at, row.error = InvitationState.SENT, utcnow(), ""
        return True
    row.tries += 1
    row.error = error[:300]
    again = leases.next_try(row.tries, MAX_TRIES, RETRIES, utcnow(), permanent=permanent)
    if again is None:
        row.state = InvitationState.FAILED
    else:
        row.next_at = again
    return True


def of_meeting(session: Session, meeting_id: int) -> list[Invitation]:
    return list(session.scalars(select(Invitation).where(Invitation.meeting_id == meeting_id).order_by(Invitation.id)))


def supersede(session: Session, meeting_id: int) -> None:
    """Pending mails of an older version are not sent: the newer one replaces them."""
    session.execute(
        update(Invitation)
        .where(Invitation.meeting_id == meeting_id, Invitation.state == InvitationState.PENDING)
        .values(state=InvitationState.SUPERSEDED)
    )


# ------------------------------------------------------------------ save and send
def schedule(
    session: Session, pbx: Pbx, settings: Settings, room: str, values: MeetingInput, actor: Actor = ADMIN
) -> Meeting:
    """Save a new meeting and owe every attendee their invitation (the seed's "Save and Send")."""
    meeting = create_meeting(session, pbx, room, values, actor)
    owe(session, pbx, meeting, settings)
    return meeting


def reschedule(
    session: Session, pbx: Pbx, settings: Settings, meeting_id: int, values: MeetingInput, actor: Actor = ADMIN
) -> Meeting:
    """Change a meeting: attendees get the update (same UID, higher SEQUENCE);
    those taken off it get a cancellation."""
    meeting, removed = update_meeting(session, pbx, meeting_id, values, actor)
    supersede(session, meeting.id)
    owe(session, pbx, meeting, settings, removed=removed)
    return meeting


def call_off(session: Session, pbx: Pbx, settings: Settings, meeting_id: int, actor: Actor = ADMIN) -> Meeting:
    """Cancel a meeting: every attendee gets METHOD:CANCEL."""
    meeting = cancel_meeting(session, pbx, meeting_id, actor)
    supersede(session, meeting.id)
    owe(session, pbx, meeting, settings, kind=InvitationKind.CANCEL)
    return meeting
