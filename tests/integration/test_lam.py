"""LAM on a committed store of each backend: rooms and licences, who may do
what, meetings and their refusals, invitations mailed through a real SMTP
server with an iCalendar that the icalendar library reads back, meeting
links and moderator tokens, and the dial-in's PIN rules."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import jwt
import pytest
from sqlalchemy import update

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.lam import invitations, links, services
from kalliope_tel.lam.exceptions import InvalidToken, InvalidValue, NotAllowed, NotFound, Overlap
from kalliope_tel.lam.models import Invitation, InvitationState
from kalliope_tel.lam.sender import send_due
from kalliope_tel.tenancy.services import create_pbx, get_pbx, update_pbx
from kalliope_tel.users import services as users
from kalliope_tel.users.models import Role
from tests.conftest import drop_pg_database, kalliope, new_database_url
from tests.fax_service_support import MailSink, smtp_server

pytestmark = [pytest.mark.integration]
SECRET = "lam-test-secret-that-is-long-enough-for-hs256"
OTHER_SECRET = "another secret, just as long as the real one"
ROME = ZoneInfo("Europe/Rome")


@pytest.fixture(scope="module")
def mail() -> Iterator[tuple[MailSink, int]]:
    with smtp_server() as (sink, port):
        yield sink, port


@pytest.fixture
def lam(db_backend: str, tmp_path: Path, mail: tuple[MailSink, int]) -> Iterator[Container]:
    url, handle = new_database_url(db_backend, tmp_path)
    with mail[0].lock:
        mail[0].messages.clear()  # one server for the module; each test counts its own mail
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        smtp_url=f"smtp://127.0.0.1:{mail[1]}",
        mail_from="lam@hotel.test",
        lam_jitsi_url="https://meet.hotel.test",
        lam_jitsi_app_id="kt-hotel",
        lam_jitsi_secret=SECRET,  # type: ignore[arg-type]
    )
    container = Container(settings)
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as s:
        pbx = get_pbx(s)
        update_pbx(s, pbx.slug, timezone="Europe/Rome")
        services.update_settings(s, pbx, licences=2, dial_in="880")
        for name, roles in (("olga", set()), ("mara", {Role.LAM}), ("gino", set()), ("ada", {Role.ADMIN})):
            users.add_user(s, pbx, name, f"{name}@hotel.test", name.title())
            users.set_roles(s, pbx, name, roles or {Role.FAX})
        services.create_room(s, pbx, "Blue")
        services.set_owners(s, pbx, "Blue", ["olga"])
    yield container
    container.close()
    if handle:
        drop_pg_database(str(handle))


def work(container: Container, fn: Any) -> Any:
    with transaction(container.sessions) as session:
        return fn(session, get_pbx(session))


def actor(session: Any, pbx: Any, name: str) -> services.Actor:
    user = users.get_user(session, pbx, name)
    return services.Actor(user, user.role_set)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    now = datetime.now(ROME)
    return (now + timedelta(days=day)).replace(hour=hour, minute=minute, second=0, microsecond=0)


def meeting_input(start: datetime, end: datetime, **kw: Any) -> services.MeetingInput:
    attendees = kw.pop(
        "attendees",
        [
            services.AttendeeInput(user="gino"),
            services.AttendeeInput(email="guest@outside.example"),
            services.AttendeeInput(user="olga", moderator=True),
        ],
    )
    return services.MeetingInput(kw.pop("name", "Budget review"), start, end, attendees, **kw)


# ------------------------------------------------------------------ rooms and rights
def test_rooms_are_licensed_and_seen_by_their_owners_and_managers_only(lam: Container) -> None:
    def check(s: Any, p: Any) -> None:
        services.create_room(s, p, "Green", actor(s, p, "mara"))  # a LAM manager: allowed
        with pytest.raises(InvalidValue, match="2 LAM room licence"):
            services.create_room(s, p, "Red")
        with pytest.raises(NotAllowed):
            services.create_room(s, p, "Red", actor(s, p, "olga"))
        assert [r.name for r in services.list_rooms(s, p, actor(s, p, "olga"))] == ["Blue"]
        assert [r.name for r in services.list_rooms(s, p, actor(s, p, "mara"))] == ["Blue", "Green"]
        assert [r.name for r in services.list_rooms(s, p, actor(s, p, "ada"))] == ["Blue", "Green"]
        assert services.list_rooms(s, p, actor(s, p, "gino")) == []
        with pytest.raises(NotFound):
            services.meetings(s, p, "Blue", actor(s, p, "gino"))
        with pytest.raises(InvalidValue, match="has 2 rooms"):
            services.update_settings(s, p, licences=1)
        # Another PBX's users and rooms never mix.
        other = create_pbx(s, "other", "Other")
        with pytest.raises(NotFound):
            services.get_room(s, other, "Blue")
        with pytest.raises(NotFound, match="no user 'nobody'"):
            services.set_owners(s, p, "Blue", ["nobody"])

    work(lam, check)


def test_meetings_are_refused_with_a_reason(lam: Container) -> None:
    def check(s: Any, p: Any) -> None:
        olga = actor(s, p, "olga")
        first = services.create_meeting(s, p, "Blue", meeting_input(local(1, 10), local(1, 11)), olga)
        cases = [
            (meeting_input(local(1, 12), local(1, 11, 30)), InvalidValue, "ends before it starts"),
            (meeting_input(local(-1, 10), local(-1, 11)), InvalidValue, "in the past"),
            (meeting_input(local(2, 10), local(3, 11)), InvalidValue, "at most 24 hours"),
            (meeting_input(local(1, 10, 30), local(1, 12)), Overlap, "has meeting 'Budget review'"),
            (
                meeting_input(local(2, 10), local(2, 11), attendees=[services.AttendeeInput(email="not an address")]),
                InvalidValue,
                "is not an e-mail address",
            ),
        ]
        for values, error, reason in cases:
            with pytest.raises(error, match=reason):
                services.create_meeting(s, p, "Blue", values, olga)
        with pytest.raises(NotFound):
            services.create_meeting(s, p, "Blue", meeting_input(local(3, 10), local(3, 11)), actor(s, p, "gino"))
        # Back to back is not an overlap; a cancelled meeting frees its slot.
        services.create_meeting(s, p, "Blue", meeting_input(local(1, 11), local(1, 12)), olga)
        services.cancel_meeting(s, p, first.id, olga)
        services.create_meeting(s, p, "Blue", meeting_input(local(1, 10), local(1, 11)), olga)

    work(lam, check)


# ------------------------------------------------------------------ invitations
def _calendar(msg: EmailMessage) -> icalendar.Calendar:
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, [p.get_content_type() for p in msg.walk()]
    attached = [p for p in msg.iter_attachments() if p.get_filename() == "invite.ics"]
    assert attached and attached[0].get_content() == parts[0].get_content().encode()
    return icalendar.Calendar.from_ical(parts[0].get_content())


def _send(container: Container) -> int:
    return asyncio.run(send_due(container, "test-node"))


def test_save_and_send_then_update_and_cancel_share_the_uid(lam: Container, mail: tuple[MailSink, int]) -> None:
    sink, _ = mail
    settings = lam.settings
    start, end = local(2, 9, 30), local(2, 10, 45)
    meeting = work(
        lam, lambda s, p: invitations.schedule(s, p, settings, "Blue", meeting_input(start, end), actor(s, p, "olga"))
    )
    assert _send(lam) == 3
    sink.wait(lambda: len(sink.to("guest@outside.example")) == 1, 10, "invitation")
    cal = _calendar(sink.to("guest@outside.example")[-1])
    assert str(cal["method"]) == "REQUEST"
    event = cal.walk("VEVENT")[0]
    assert event["uid"] == meeting.uid and int(event["sequence"]) == 0
    assert event.decoded("dtstart") == start and event.decoded("dtend") == end
    assert event["dtstart"].params["TZID"] == "Europe/Rome"
    assert cal.walk("VTIMEZONE")[0]["tzid"] == "Europe/Rome"
    attendees = {str(a).removeprefix("mailto:"): a.params for a in event["attendee"]}
    assert set(attendees) == {"gino@hotel.test", "guest@outside.example", "olga@hotel.test"}
    assert attendees["olga@hotel.test"]["ROLE"] == "CHAIR"
    assert str(event["organizer"]) == "mailto:olga@hotel.test"
    # The guest's mail: the plain link (no token) and the guests' PIN.
    guest_body = sink.to("guest@outside.example")[-1].get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert f"https://meet.hotel.test/{meeting.instance_id}\n" in guest_body + "\n" and "jwt=" not in guest_body
    assert f"call 880 and type {meeting.guest_pin}" in guest_body
    # The moderator's: a token, and the moderators' PIN.
    olga_body = sink.to("olga@hotel.test")[-1].get_body(("plain",)).get_content().replace("\r\n", "\n")
    token = re.search(r"jwt=([A-Za-z0-9_.%-]+)", olga_body)
    assert token and f"type {meeting.moderator_pin}" in olga_body

    # Update: later, without the outside guest. Same UID, higher SEQUENCE; the guest gets a CANCEL.
    changed = meeting_input(
        local(2, 11),
        local(2, 12),
        attendees=[services.AttendeeInput(user="gino"), services.AttendeeInput(user="olga", moderator=True)],
    )
    work(lam, lambda s, p: invitations.reschedule(s, p, settings, meeting.id, changed, actor(s, p, "olga")))
    assert _send(lam) == 3
    sink.wait(lambda: len(sink.to("gino@hotel.test")) == 2 and len(sink.to("guest@outside.example")) == 2, 10, "update")
    update = _calendar(sink.to("gino@hotel.test")[-1]).walk("VEVENT")[0]
    assert update["uid"] == meeting.uid and int(update["sequence"]) == 1
    assert update.decoded("dtstart") == local(2, 11)
    removed = _calendar(sink.to("guest@outside.example")[-1])
    assert str(removed["method"]) == "CANCEL" and removed.walk("VEVENT")[0]["uid"] == meeting.uid

    # Cancel: everybody left gets METHOD:CANCEL with the same UID and SEQUENCE 2.
    work(lam, lambda s, p: invitations.call_off(s, p, settings, meeting.id, actor(s, p, "olga")))
    assert _send(lam) == 2
    sink.wait(lambda: len(sink.to("olga@hotel.test")) == 3, 10, "cancel")
    cancel = _calendar(sink.to("olga@hotel.test")[-1])
    assert str(cancel["method"]) == "CANCEL"
    assert cancel.walk("VEVENT")[0]["uid"] == meeting.uid and int(cancel.walk("VEVENT")[0]["sequence"]) == 2
    assert cancel.walk("VEVENT")[0]["status"] == "CANCELLED"
    rows = work(
        lam, lambda s, p: [(i.email, i.kind.value, i.sequence, i.state) for i in invitations.of_meeting(s, meeting.id)]
    )
    assert all(state is InvitationState.SENT for *_, state in rows) and len(rows) == 8
    assert _send(lam) == 0  # each mail once


def test_a_refused_recipient_fails_its_invitation_alone(lam: Container) -> None:
    settings = lam.settings.model_copy(update={"smtp_url": "smtp://127.0.0.1:9"})  # nothing listens there
    meeting = work(
        lam, lambda s, p: invitations.schedule(s, p, settings, "Blue", meeting_input(local(3, 9), local(3, 10)))
    )
    broken = Container(settings)
    try:
        assert asyncio.run(send_due(broken, "n1")) == 0
    finally:
        broken.close()
    rows = work(lam, lambda s, p: invitations.of_meeting(s, meeting.id))
    assert {r.state for r in rows} == {InvitationState.PENDING} and all(r.tries == 1 and r.error for r in rows)
    assert all(r.next_at > utcnow() for r in rows)  # retried later, not at once


def test_a_stalled_mail_server_and_a_second_node_send_each_invitation_once(
    lam: Container, mail: tuple[MailSink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node a's mail server accepts the connection and never answers: each of
    its sends is cut within the lease and recorded, one claim at a time, so
    node b, sending meanwhile through a working server, never sends one that
    a still holds; a claim a lost is not finished by a."""
    import socket
    import threading

    from kalliope_tel.lam import sender

    monkeypatch.setattr(invitations, "SEND_SECONDS", 1.0)
    mute = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(mute.accept()[0]) for _ in range(50)], daemon=True).start()
    stalled = Container(lam.settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{mute.getsockname()[1]}"}))
    meeting = work(
        lam, lambda s, p: invitations.schedule(s, p, lam.settings, "Blue", meeting_input(local(4, 9), local(4, 10)))
    )
    total = len(work(lam, lambda s, p: invitations.of_meeting(s, meeting.id)))

    async def both() -> tuple[int, int]:
        return await asyncio.gather(sender.send_due(stalled, "node-a"), sender.send_due(lam, "node-b"))

    try:
        sent_a, sent_b = asyncio.run(both())
    finally:
        stalled.close()
        mute.close()
    rows = work(lam, lambda s, p: invitations.of_meeting(s, meeting.id))
    assert sent_a == 0 and sent_b == sum(1 for r in rows if r.state is InvitationState.SENT)
    with mail[0].lock:
        addresses = [tuple(rcpt) for rcpt, _ in mail[0].messages]
    assert len(addresses) == len(set(addresses)) == sent_b  # nobody got it twice
    assert all(r.claimed_by is None for r in rows)  # every claim finished by its holder
    waiting = [r for r in rows if r.state is InvitationState.PENDING]
    assert len(waiting) == total - sent_b and all("did not finish within 1 s" in r.error for r in waiting)
    # A claim that is no longer a's (b took it after the lease) is not finished by a.
    if waiting:
        taken = update(Invitation).values(claimed_by="node-b", lease_until=utcnow() + invitations.LEASE)
        work(lam, lambda s, p: s.execute(taken))
        assert work(lam, lambda s, p: invitations.finish(s, waiting[0].id, "node-a", None)) is False


# ------------------------------------------------------------------ links
def test_links_and_moderator_tokens_are_bound_to_the_room_and_the_window(lam: Container) -> None:
    site = invitations.site_of(lam.settings)
    assert site is not None
    start, end = local(4, 15), local(4, 16)
    made = [
        work(
            lam,
            lambda s, p, h=h: services.create_meeting(s, p, "Blue", meeting_input(local(4 + h, 15), local(4 + h, 16))),
        )
        for h in range(5)
    ]
    ids = [m.instance_id for m in made]
    assert len(set(ids)) == 5 and all(len(i) == 42 and i.isalnum() and i.isascii() for i in ids)
    meeting = made[0]
    link = work(
        lam,
        lambda s, p: invitations.link_for(
            lam.settings, services.get_meeting(s, p, meeting.id), services.get_meeting(s, p, meeting.id).attendees[-1]
        ),
    )
    token = link.split("jwt=")[1]
    claims = links.verify(site, token, meeting.instance_id, at=start + timedelta(minutes=5))
    assert claims["context"]["user"]["moderator"] is True and claims["room"] == meeting.instance_id
    assert claims["nbf"] == int((start - site.margin).timestamp()) and claims["exp"] == int(
        (end + site.margin).timestamp()
    )
    plain = jwt.decode(token, SECRET, algorithms=["HS256"], audience="jitsi", options={"verify_nbf": False})
    assert plain["iss"] == "kt-hotel" and plain["sub"] == "meet.hotel.test"
    with pytest.raises(InvalidToken, match="another meeting room"):
        links.verify(site, token, made[1].instance_id, at=start)
    with pytest.raises(InvalidToken, match="not valid yet"):
        links.verify(site, token, meeting.instance_id, at=start - site.margin - timedelta(seconds=1))
    with pytest.raises(InvalidToken, match="expired"):
        links.verify(site, token, meeting.instance_id, at=end + site.margin)
    with pytest.raises(InvalidToken, match="not valid yet"):
        links.verify(site, token, meeting.instance_id)  # now: days before the meeting
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}),
        "another secret, just as long as the real one",
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="Signature"):
        links.verify(site, forged, meeting.instance_id, at=start)


def test_cli_saves_a_meeting_and_prints_links(lam: Container) -> None:
    env = {
        "KALLIOPE_DATABASE_URL": lam.settings.effective_database_url,
        "KALLIOPE_LAM_JITSI_URL": "https://meet.hotel.test",
        "KALLIOPE_LAM_JITSI_SECRET": SECRET,
        "KALLIOPE_LAM_JITSI_APP_ID": "kt-hotel",
    }
    day = (datetime.now(ROME) + timedelta(days=5)).strftime("%Y-%m-%d")
    added = kalliope(
        "lam",
        "meetings",
        "add",
        "Blue",
        "--name",
        "Kick-off",
        "--start",
        f"{day} 09:00",
        "--end",
        f"{day} 10:00",
        "--attendee",
        "gino",
        "--moderator",
        "olga",
        "--json",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    import json

    data = json.loads(added.stdout)
    assert data["starts_at"].startswith(f"{day}T09:00:00+0")
    moderator = kalliope("lam", "link", str(data["id"]), "--as", "olga", env=env)
    guest = kalliope("lam", "link", str(data["id"]), "--as", "gino", env=env)
    stranger = kalliope("lam", "link", str(data["id"]), "--as", "ada", env=env)
    assert "jwt=" in moderator.stdout and data["instance_id"] in moderator.stdout
    assert guest.stdout.strip() == f"https://meet.hotel.test/{data['instance_id']}"
    assert stranger.returncode != 0 and "neither invited" in stranger.stderr
    overlap = kalliope(
        "lam", "meetings", "add", "Blue", "--name", "Clash", "--start", f"{day} 09:30", "--end", f"{day} 10:30", env=env
    )
    assert overlap.returncode != 0 and "has meeting 'Kick-off'" in overlap.stderr


# ------------------------------------------------------------------ dial-in rules
def test_dial_in_pins_join_in_the_window_only(lam: Container) -> None:
    now = datetime.now(UTC)

    def check(s: Any, p: Any) -> None:
        meeting = services.create_meeting(
            s, p, "Blue", meeting_input(now + timedelta(minutes=5), now + timedelta(minutes=65))
        )
        later = services.create_meeting(s, p, "Blue", meeting_input(now + timedelta(hours=3), now + timedelta(hours=4)))
        assert len({meeting.guest_pin, meeting.moderator_pin, later.guest_pin, later.moderator_pin}) == 4
        assert services.dial_in(s, p, meeting.guest_pin) == services.DialIn(
            "join", meeting.instance_id, False, meeting.id
        )
        assert services.dial_in(s, p, meeting.moderator_pin).moderator is True
        assert services.dial_in(s, p, later.guest_pin).result == "closed"  # not yet
        assert services.dial_in(s, p, meeting.guest_pin, now + timedelta(minutes=66)).result == "closed"  # over
        assert services.dial_in(s, p, "12345").result == "wrong-pin"
        assert services.dial_in(s, p, "1; DROP").result == "wrong-pin"
        services.cancel_meeting(s, p, meeting.id)
        assert services.dial_in(s, p, meeting.guest_pin).result == "wrong-pin"

    work(lam, check)
