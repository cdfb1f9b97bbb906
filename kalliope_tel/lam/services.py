"""LAM rooms, owners and meetings. Callers own the transaction.

Who may do what: administrators and LAM managers (role ``lam``) see and
manage every room of their PBX and create rooms up to the licence count;
a room's owners manage its meetings. Every check is here, so the CLI (acting
as the administrator) and the web (acting as the logged-in user) share it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.catalogue import Term
from kalliope_tel.db.base import utcnow
from kalliope_tel.lam.exceptions import InvalidValue, NotAllowed, NotFound, Overlap
from kalliope_tel.lam.links import new_instance_id, new_pin
from kalliope_tel.lam.models import Attendee, LamRoom, LamRoomOwner, LamSettings, Meeting, MeetingState
from kalliope_tel.mail.addresses import check_address
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import per_pbx_row
from kalliope_tel.users.models import Role, User
from kalliope_tel.users.services import find_user

MAX_MEETING = timedelta(hours=24)


# ------------------------------------------------------------------ settings
def _rooms_in_use(session: Session, pbx: Pbx) -> int:
    """Rooms the PBX has: each holds one licence."""
    # A Plus extension's personal room is paid by its licence, not one of these.
    query = select(func.count()).select_from(LamRoom).where(LamRoom.pbx_id == pbx.id, LamRoom.extension_id.is_(None))
    return session.scalar(query) or 0


def get_settings(session: Session, pbx: Pbx) -> LamSettings:
    return per_pbx_row(session, LamSettings, pbx)


def update_settings(
    session: Session, pbx: Pbx, *, licences: int | None = None, dial_in: str | None = None
) -> LamSettings:
    settings = get_settings(session, pbx)
    if licences is not None:
        if not 0 <= licences <= 10_000:
            raise InvalidValue("lam.licences_range")
        used = _rooms_in_use(session, pbx)
        if licences < used:
            raise InvalidValue("lam.licences_in_use", used=used, licences=licences)
        settings.licences = licences
    if dial_in is not None:
        try:
            settings.dial_in_number = confgate.extension(dial_in) if dial_in else ""
        except confgate.UnsafeValue as exc:
            raise InvalidValue(exc.code, **exc.params, setting="dial_in") from None
    session.flush()
    return settings


# ------------------------------------------------------------------ who
@dataclass(frozen=True)
class Actor:
    """Who acts: the administrator on the CLI (``user`` None), or a user."""

    user: User | None
    roles: frozenset[Role] = frozenset()

    @property
    def manager(self) -> bool:
        return self.user is None or bool({Role.ADMIN, Role.LAM} & self.roles)


ADMIN = Actor(None)


def owns_a_room(session: Session, pbx_id: int, user_id: int) -> bool:
    """Whether the user owns a meeting room of their PBX (the meetings page is theirs then)."""
    query = (
        select(LamRoomOwner.id)
        .join(LamRoom, LamRoom.id == LamRoomOwner.room_id)
        .where(LamRoom.pbx_id == pbx_id, LamRoomOwner.user_id == user_id)
    )
    return session.scalars(query.limit(1)).first() is not None


def may_manage(room: LamRoom, actor: Actor) -> bool:
    return actor.manager or any(o.user_id == actor.user.id for o in room.owners if actor.user is not None)


# ------------------------------------------------------------------ rooms
def _name(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value or len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidValue("lam.text_length", what=Term(what), limit=limit)
    return value


def create_room(session: Session, pbx: Pbx, name: str, actor: Actor = ADMIN) -> LamRoom:
    if not actor.manager:
        raise NotAllowed("lam.only_managers_create")
    name = _name(name, "lam.field.room", 80)
    licences = get_settings(session, pbx).licences
    used = _rooms_in_use(session, pbx)
    if used >= licences:
        raise InvalidValue("lam.no_licence", licences=licences)
    if session.scalar(select(LamRoom.id).where(LamRoom.pbx_id == pbx.id, LamRoom.name == name)) is not None:
        raise InvalidValue("lam.room_exists", name=repr(name))
    room = LamRoom(pbx_id=pbx.id, name=name)
    session.add(room)
    session.flush()
    return room


def get_room(session: Session, pbx: Pbx, name: str, actor: Actor = ADMIN) -> LamRoom:
    room = session.scalars(select(LamRoom).where(LamRoom.pbx_id == pbx.id, LamRoom.name == name)).first()
    if room is None or not (actor.manager or may_manage(room, actor)):
        raise NotFound("lam.no_room", name=repr(name))  # not telling which rooms exist to whom may not see them
    return room


def list_rooms(session: Session, pbx: Pbx, actor: Actor = ADMIN) -> list[LamRoom]:
    rooms = session.scalars(select(LamRoom).where(LamRoom.pbx_id == pbx.id).order_by(LamRoom.name)).all()
    return [r for r in rooms if may_manage(r, actor)]


def set_owners(session: Session, pbx: Pbx, name: str, owners: Sequence[str], actor: Actor = ADMIN) -> LamRoom:
    if not actor.manager:
        raise NotAllowed("lam.only_managers_owners")
    room = get_room(session, pbx, name)
    ids = []
    for owner in owners:
        user = find_user(session, pbx, owner)
        if user is None:
            raise NotFound("lam.no_user", user=repr(owner))
        ids.append(user.id)
    wanted = list(dict.fromkeys(ids))
    # Keep the rows of owners who stay: replacing them all would insert a
    # (room, user) row before the old one is deleted (unique constraint).
    room.owners = [o for o in room.owners if o.user_id in wanted]
    kept = {o.user_id for o in room.owners}
    room.owners.extend(LamRoomOwner(user_id=i) for i in wanted if i not in kept)
    session.flush()
    return room


def remove_room(session: Session, pbx: Pbx, name: str, actor: Actor = ADMIN) -> None:
    if not actor.manager:
        raise NotAllowed("lam.only_managers_remove")
    room = get_room(session, pbx, name)
    upcoming = session.scalar(
        select(func.count())
        .select_from(Meeting)
        .where(Meeting.room_id == room.id, Meeting.state == MeetingState.SCHEDULED, Meeting.ends_at > utcnow())
    )
    if upcoming:
        raise InvalidValue("lam.room_has_meetings", name=repr(name), count=upcoming)
    session.delete(room)
    session.flush()


# ------------------------------------------------------------------ meetings
@dataclass(frozen=True)
class AttendeeInput:
    """A PBX user by name, or an outside address."""

    user: str = ""
    email: str = ""
    moderator: bool = False


@dataclass(frozen=True)
class MeetingInput:
    name: str
    starts_at: datetime
    ends_at: datetime
    attendees: Sequence[AttendeeInput] = ()
    password: str = ""
    waiting_room: bool = True


def _check_times(values: MeetingInput, now: datetime) -> None:
    if values.starts_at.tzinfo is None or values.ends_at.tzinfo is None:
        raise InvalidValue("lam.needs_timezone")
    if values.ends_at <= values.starts_at:
        raise InvalidValue("lam.ends_before_start")
    if values.ends_at - values.starts_at > MAX_MEETING:
        raise InvalidValue("lam.too_long")
    if values.starts_at < now - timedelta(minutes=1):
        raise InvalidValue("lam.in_past")


def _attendees(session: Session, pbx: Pbx, wanted: Sequence[AttendeeInput]) -> list[Attendee]:
    out: dict[str, Attendee] = {}
    for item in wanted:
        if item.user:
            user = find_user(session, pbx, item.user)
            if user is None:
                raise NotFound("lam.no_attendee_user", user=repr(item.user))
            row = Attendee(
                user_id=user.id, email=user.email, name=user.full_name or user.name, moderator=item.moderator
            )
        else:
            try:
                email = check_address(item.email.strip())
            except ValueError:
                raise InvalidValue("lam.attendee_address", email=repr(item.email)) from None
            row = Attendee(email=email, name="", moderator=item.moderator)
        previous = out.get(row.email)
        if previous is not None:
            previous.moderator = previous.moderator or row.moderator
        else:
            out[row.email] = row
    if len(out) > 500:
        raise InvalidValue("lam.too_many_attendees", limit=500)
    return list(out.values())


def _replace_attendees(meeting: Meeting, wanted: list[Attendee]) -> None:
    """Keep the rows of attendees who stay (one row per address: a new row
    beside the old would break the unique key before the old one is deleted)."""
    by_email = {a.email: a for a in wanted}
    for row in list(meeting.attendees):
        new = by_email.pop(row.email, None)
        if new is None:
            meeting.attendees.remove(row)
        else:
            row.user_id, row.name, row.moderator = new.user_id, new.name, new.moderator
    meeting.attendees.extend(by_email.values())


def _refuse_overlap(session: Session, room: LamRoom, starts: datetime, ends: datetime, besides: int | None) -> None:
    query = select(Meeting).where(
        Meeting.room_id == room.id,
        Meeting.state == MeetingState.SCHEDULED,
        Meeting.starts_at < ends,
        Meeting.ends_at > starts,
    )
    if besides is not None:
        query = query.where(Meeting.id != besides)
    clash = session.scalars(query.order_by(Meeting.starts_at)).first()
    if clash is not None:
        raise Overlap("lam.overlap", room=repr(room.name), meeting=repr(clash.name),
                      start=f"{clash.starts_at:%Y-%m-%d %H:%M}", end=f"{clash.ends_at:%H:%M}")  # fmt: skip


def _pins_free(session: Session, pbx: Pbx, meeting: Meeting) -> bool:
    """No other meeting of the PBX whose dial-in window overlaps uses either PIN."""
    pins = {meeting.guest_pin, meeting.moderator_pin}
    query = select(Meeting.guest_pin, Meeting.moderator_pin).where(
        Meeting.pbx_id == pbx.id,
        Meeting.state == MeetingState.SCHEDULED,
        Meeting.starts_at < meeting.ends_at + DIAL_IN_MARGIN,
        Meeting.ends_at > meeting.starts_at - DIAL_IN_MARGIN,
    )
    if meeting.id is not None:
        query = query.where(Meeting.id != meeting.id)
    return not any({g, m} & pins for g, m in session.execute(query))


DIAL_IN_MARGIN = timedelta(minutes=10)


def _new_pins(session: Session, pbx: Pbx, meeting: Meeting) -> None:
    for _ in range(20):
        meeting.guest_pin, meeting.moderator_pin = new_pin(), new_pin()
        if meeting.guest_pin != meeting.moderator_pin and _pins_free(session, pbx, meeting):
            return
    raise InvalidValue("lam.no_pins")


def create_meeting(
    session: Session,
    pbx: Pbx,
    room_name: str,
    values: MeetingInput,
    actor: Actor = ADMIN,
    *,
    now: datetime | None = None,
) -> Meeting:
    room = get_room(session, pbx, room_name, actor)
    if not may_manage(room, actor):
        raise NotAllowed("lam.not_your_room", room=repr(room.name))
    _check_times(values, now or utcnow())
    name = _name(values.name, "lam.field.name", 120)
    if len(values.password) > 64:
        raise InvalidValue("lam.password_length", limit=64)
    # Lock the room: two people booking the same slot at once get one meeting and one refusal.
    session.execute(select(LamRoom.id).where(LamRoom.id == room.id).with_for_update())
    _refuse_overlap(session, room, values.starts_at, values.ends_at, None)
    meeting = Meeting(
        pbx_id=pbx.id,
        room_id=room.id,
        name=name,
        starts_at=values.starts_at,
        ends_at=values.ends_at,
        password=values.password,
        waiting_room=values.waiting_room,
        instance_id=new_instance_id(),
        uid=f"{uuid.uuid4()}@kalliope-tel",
        sequence=0,
        organizer_id=actor.user.id if actor.user else None,
        attendees=_attendees(session, pbx, values.attendees),
    )
    _new_pins(session, pbx, meeting)
    session.add(meeting)
    session.flush()
    return meeting


def get_meeting(session: Session, pbx: Pbx, meeting_id: int, actor: Actor = ADMIN) -> Meeting:
    meeting = session.scalars(select(Meeting).where(Meeting.pbx_id == pbx.id, Meeting.id == meeting_id)).first()
    if meeting is None:
        raise NotFound("lam.no_meeting", id=meeting_id)
    room = session.get(LamRoom, meeting.room_id)
    assert room is not None
    if not may_manage(room, actor):
        raise NotFound("lam.no_meeting", id=meeting_id)
    return meeting


def update_meeting(
    session: Session,
    pbx: Pbx,
    meeting_id: int,
    values: MeetingInput,
    actor: Actor = ADMIN,
    *,
    now: datetime | None = None,
) -> tuple[Meeting, list[str]]:
    """Change a meeting: (the meeting, addresses removed from it)."""
    meeting = get_meeting(session, pbx, meeting_id, actor)
    if meeting.state is not MeetingState.SCHEDULED:
        raise InvalidValue("lam.meeting_state", id=meeting_id, state=Term(f"state.{meeting.state.value}"))
    _check_times(values, now or utcnow())
    room = session.get(LamRoom, meeting.room_id)
    assert room is not None
    session.execute(select(LamRoom.id).where(LamRoom.id == room.id).with_for_update())
    _refuse_overlap(session, room, values.starts_at, values.ends_at, meeting.id)
    before = {a.email for a in meeting.attendees}
    meeting.name = _name(values.name, "lam.field.name", 120)
    meeting.starts_at, meeting.ends_at = values.starts_at, values.ends_at
    meeting.password, meeting.waiting_room = values.password, values.waiting_room
    _replace_attendees(meeting, _attendees(session, pbx, values.attendees))
    if not _pins_free(session, pbx, meeting):
        _new_pins(session, pbx, meeting)
    meeting.sequence += 1
    meeting.updated_at = utcnow()
    session.flush()
    return meeting, sorted(before - {a.email for a in meeting.attendees})


def cancel_meeting(session: Session, pbx: Pbx, meeting_id: int, actor: Actor = ADMIN) -> Meeting:
    meeting = get_meeting(session, pbx, meeting_id, actor)
    if meeting.state is MeetingState.CANCELLED:
        raise InvalidValue("lam.cancelled_already", id=meeting_id)
    meeting.state = MeetingState.CANCELLED
    meeting.sequence += 1
    meeting.updated_at = utcnow()
    session.flush()
    return meeting


def meetings(
    session: Session,
    pbx: Pbx,
    room_name: str,
    actor: Actor = ADMIN,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    cancelled: bool = False,
) -> list[Meeting]:
    room = get_room(session, pbx, room_name, actor)
    query = select(Meeting).where(Meeting.room_id == room.id)
    if since is not None:
        query = query.where(Meeting.ends_at > since)
    if until is not None:
        query = query.where(Meeting.starts_at < until)
    if not cancelled:
        query = query.where(Meeting.state == MeetingState.SCHEDULED)
    return list(session.scalars(query.order_by(Meeting.starts_at)))


# ------------------------------------------------------------------ dial-in
@dataclass(frozen=True)
class DialIn:
    """What a PIN typed on the phone gets: join (conference, moderator?) or a refusal."""

    result: str  # "join", "wrong-pin", "closed"
    conference: str = ""
    moderator: bool = False
    meeting_id: int | None = None


def dial_in(session: Session, pbx: Pbx, pin: str, now: datetime | None = None) -> DialIn:
    """A caller typed ``pin``: the meeting whose PIN it is and whose window
    (start minus the margin, to the end) holds now; else why not."""
    if not pin.isdigit() or len(pin) > 12:
        return DialIn("wrong-pin")
    now = now or utcnow()
    candidates = session.scalars(
        select(Meeting).where(
            Meeting.pbx_id == pbx.id,
            Meeting.state == MeetingState.SCHEDULED,
            (Meeting.guest_pin == pin) | (Meeting.moderator_pin == pin),
        )
    ).all()
    if not candidates:
        return DialIn("wrong-pin")
    for meeting in candidates:
        if meeting.starts_at - DIAL_IN_MARGIN <= now < meeting.ends_at:
            return DialIn("join", meeting.instance_id, pin == meeting.moderator_pin, meeting.id)
    return DialIn("closed")


def meeting_view(meeting: Meeting, tz: str) -> dict[str, Any]:
    zone = ZoneInfo(tz)
    return {
        "id": meeting.id,
        "name": meeting.name,
        "starts_at": meeting.starts_at.astimezone(zone).isoformat(),
        "ends_at": meeting.ends_at.astimezone(zone).isoformat(),
        "state": meeting.state.value,
        "waiting_room": meeting.waiting_room,
        "password": bool(meeting.password),
        "instance_id": meeting.instance_id,
        "guest_pin": meeting.guest_pin,
        "moderator_pin": meeting.moderator_pin,
        "sequence": meeting.sequence,
        "attendees": [{"email": a.email, "name": a.name, "moderator": a.moderator} for a in meeting.attendees],
    }
