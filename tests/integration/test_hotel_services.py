"""Hotel domain on both databases: templates, rooms, stays, cleaning, nightly reset, rendering."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kalliope_tel.changes.models import Change
from kalliope_tel.dialplan.generator import LAB_DEVICE, render
from kalliope_tel.extensions import accounts as ext_accounts
from kalliope_tel.hotel import calls, cleaning, services, stays
from kalliope_tel.hotel.exceptions import InUse, InvalidValue, NotFound, RoomFree, RoomOccupied
from kalliope_tel.hotel.models import ClassKind, CleaningEvent, CleaningSource, NightlyReset, Room
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.wakeup.models import Alarm, AlarmState

pytestmark = pytest.mark.integration


@pytest.fixture
def pbx(db: Session) -> Pbx:
    pbx = get_pbx(db)
    services.ensure_default_classes(db, pbx, "kt-lab-trunk")
    services.update_template_defaults(db, pbx, failovers={"noanswer.internal": "600"}, calls_limit=3, busy_level=2)
    services.create_template(db, pbx, "std", organization="Main", organizational_unit="1")
    return pbx


def test_template_seeded_from_defaults_and_room_overrides(db: Session, pbx: Pbx) -> None:
    template = services.get_template(db, pbx, "std")
    assert (template.calls_limit, template.busy_level) == (3, 2)
    assert {f"{f.outcome.value}.{f.origin.value}": f.destination for f in template.failovers} == {
        "noanswer.internal": "600"
    }
    created = services.create_room(
        db,
        pbx,
        "101",
        "Sea view",
        "std",
        new_accounts=1,
        organizational_unit="3",
        failovers={"busy.external": "hangup"},
    )
    assert list(created.new_credentials) == ["101"] and len(created.new_credentials["101"]) >= 10
    view = services.room_view(db, pbx, "101")
    assert (view.building, view.floor, view.calls_limit) == ("Main", "3", 3)
    assert view.failovers == {"noanswer.internal": "600", "busy.external": "hangup"}
    assert view.standard_class == "standard" and view.restricted_class == "restricted"
    # Template changes flow to rooms that do not override them.
    services.update_template(db, pbx, "std", organization="Annex", calls_limit=5)
    services.update_room(db, pbx, "101", clear=["floor"])
    view = services.room_view(db, pbx, "101")
    assert (view.building, view.floor, view.calls_limit) == ("Annex", "1", 5)
    account = ext_accounts.list_accounts(db, pbx)[0]
    assert account.ha1 == ext_accounts.ha1("101", "kalliope", created.new_credentials["101"])


def test_invalid_values_are_refused(db: Session, pbx: Pbx) -> None:
    with pytest.raises(InvalidValue, match="extension"):
        services.create_room(db, pbx, "1a", "x", "std")
    with pytest.raises(NotFound, match="template"):
        services.create_room(db, pbx, "101", "x", "nope")
    services.create_room(db, pbx, "101", "x", "std")
    with pytest.raises(InvalidValue, match="already"):
        services.create_room(db, pbx, "101", "x", "std")
    with pytest.raises(InvalidValue, match="overlaps a room"):
        services.update_settings(db, pbx, cleaning_prefix="10")
    services.update_settings(db, pbx, cleaning_prefix="33")
    with pytest.raises(InvalidValue, match="starts with the cleaning prefix"):
        services.create_room(db, pbx, "3310", "x", "std")
    with pytest.raises(InvalidValue, match="failover"):
        services.update_room(db, pbx, "101", failovers={"late.internal": "600"})
    with pytest.raises(InUse):
        services.delete_template(db, pbx, "std")
    with pytest.raises(InUse):
        services.delete_class(db, pbx, "standard")


def test_checkin_checkout_history_and_alarms(db: Session, pbx: Pbx) -> None:
    services.create_room(db, pbx, "101", "x", "std")
    due = datetime.now(UTC) + timedelta(hours=8)
    stay = stays.check_in(db, pbx, "101", "Mario Rossi", guests=["Anna"], notes="late", alarms=[due])
    assert stay.outbound is ClassKind.RESTRICTED and stay.checkin_at.tzinfo is not None
    with pytest.raises(RoomOccupied, match="Mario Rossi"):
        stays.check_in(db, pbx, "101", "Someone")
    services.create_room(db, pbx, "102", "x", "std")
    with pytest.raises(InvalidValue, match="owner"):
        stays.check_in(db, pbx, "102", "  ")
    stays.update_stay(db, pbx, "101", guests=["Anna", "Luca"], notes="needs crib", outbound=ClassKind.STANDARD)
    assert calls.outbound_class(db, pbx, "101").class_name == "standard"
    done = stays.check_out(db, pbx, "101")
    assert done.checkout_at is not None
    with pytest.raises(RoomFree):
        stays.check_out(db, pbx, "101")
    # History keeps the stay as it was at check-out; the alarm was cancelled.
    stays.check_in(db, pbx, "101", "Next Guest")
    history = stays.history(db, pbx, stays.HistoryFilter(extension="101"))
    assert [h.owner for h in history] == ["Next Guest", "Mario Rossi"]
    assert history[1].guests == ["Anna", "Luca"] and history[1].notes == "needs crib"
    assert [h.owner for h in stays.history(db, pbx, stays.HistoryFilter(text="luca"))] == ["Mario Rossi"]
    assert db.scalars(select(Alarm.state)).all() == [AlarmState.CANCELLED]


def test_receptionist_filters(db: Session, pbx: Pbx) -> None:
    for ext, floor in (("101", "1"), ("201", "2"), ("202", "2")):
        services.create_room(db, pbx, ext, f"Room {ext}", "std", organizational_unit=floor)
    stays.check_in(db, pbx, "201", "Giulia Bianchi", notes="allergic to feathers")
    cleaning.set_cleaning(db, pbx, "202", False, CleaningSource.OPERATOR)
    f = services.RoomFilter
    assert [r.extension for r in services.list_rooms(db, pbx, f(floor="2"))] == ["201", "202"]
    assert [r.extension for r in services.list_rooms(db, pbx, f(clean=False))] == ["202"]
    assert [r.extension for r in services.list_rooms(db, pbx, f(occupied=True))] == ["201"]
    assert [r.extension for r in services.list_rooms(db, pbx, f(text="FEATHERS"))] == ["201"]
    assert [r.extension for r in services.list_rooms(db, pbx, f(text="bianchi", floor="1"))] == []


def test_cleaning_by_phone(db: Session, pbx: Pbx) -> None:
    services.create_room(db, pbx, "101", "x", "std")
    r = cleaning.PhoneCodeResult
    assert cleaning.cleaning_by_phone(db, pbx, "101", "1") is r.DIRTY
    assert services.room_view(db, pbx, "101").clean is False
    assert cleaning.cleaning_by_phone(db, pbx, "101", "0") is r.CLEAN
    assert cleaning.cleaning_by_phone(db, pbx, "101", "9") is r.BAD_DIGIT
    assert cleaning.cleaning_by_phone(db, pbx, "555", "1") is r.NOT_A_ROOM
    assert services.room_view(db, pbx, "101").clean is True
    events = db.scalars(select(CleaningEvent.clean)).all()
    assert events == [False, True]  # refused codes changed nothing
    services.update_settings(db, pbx, cleaning_enabled=False)
    assert cleaning.cleaning_by_phone(db, pbx, "101", "1") is r.DISABLED


def test_nightly_reset_marks_occupied_rooms_once(db: Session, pbx: Pbx) -> None:
    for ext in ("101", "102", "103"):
        services.create_room(db, pbx, ext, "x", "std")
    stays.check_in(db, pbx, "101", "A")
    stays.check_in(db, pbx, "102", "B")
    services.update_settings(db, pbx, nightly_dirty_at=time(3, 0))
    before = datetime(2026, 11, 24, 2, 59, tzinfo=UTC)
    assert cleaning.run_nightly_reset(db, pbx, "n1", before) is None
    at = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    assert cleaning.run_nightly_reset(db, pbx, "n1", at) == 2
    assert cleaning.run_nightly_reset(db, pbx, "n2", at + timedelta(minutes=5)) is None
    assert [r.extension for r in services.list_rooms(db, pbx, services.RoomFilter(clean=False))] == ["101", "102"]
    assert len(db.scalars(select(NightlyReset)).all()) == 1
    # The next night is a new day.
    assert cleaning.run_nightly_reset(db, pbx, "n2", at + timedelta(days=1)) == 2


def test_call_decisions(db: Session, pbx: Pbx) -> None:
    services.create_room(db, pbx, "101", "x", "std")
    services.create_room(db, pbx, "102", "x", "std", calls_limit=2, busy_level=1)
    assert calls.room_to_room(db, pbx, "101", "102") is calls.RoomToRoom.ALLOW
    services.update_settings(db, pbx, block_room_to_room=True)
    assert calls.room_to_room(db, pbx, "101", "102") is calls.RoomToRoom.BLOCK
    assert calls.room_to_room(db, pbx, "500", "102") is calls.RoomToRoom.ALLOW
    assert calls.outbound_class(db, pbx, "101") == calls.OutboundDecision("restricted", ClassKind.RESTRICTED)
    assert calls.outbound_class(db, pbx, "500") == calls.OutboundDecision("standard", None)
    v = calls.LimitVerdict
    assert calls.call_limits(db, pbx, "102", 0, incoming=True) is v.OK
    assert calls.call_limits(db, pbx, "102", 1, incoming=True) is v.BUSY
    assert calls.call_limits(db, pbx, "102", 1, incoming=False) is v.OK
    assert calls.call_limits(db, pbx, "102", 2, incoming=False) is v.LIMIT


def test_render_is_deterministic_and_complete(db: Session, pbx: Pbx) -> None:
    created = [
        services.create_room(db, pbx, "102", "B", "std", new_accounts=1),
        services.create_room(db, pbx, "101", "A", "std", new_accounts=2),
    ]
    first = render(db, pbx).files
    assert render(db, pbx).files == first
    slug = pbx.slug
    dialplan, pjsip = first[f"kalliope/extensions_{slug}.conf"], first[f"kalliope/pjsip_{slug}.conf"]
    assert dialplan.index("exten => 101,") < dialplan.index("exten => 102,")
    rooms_part, wakeup_part = dialplan.split(f"[kt-{slug}-wakeup-dial]")
    assert "Dial" not in rooms_part  # room calls dial in the static subroutine
    assert " same => n,Dial(PJSIP/101&PJSIP/101-2)" in wakeup_part  # wake-up rings the devices directly
    assert "kalliope-room-call,s,1(101,25,PJSIP/101&PJSIP/101-2)" in dialplan
    assert "exten => _*33X,1,Gosub(kalliope-hotel-cleaning,s,1(${EXTEN:3}))" in dialplan
    assert f"exten => noanswer-internal,1,Goto(kt-{slug}-internal,600,1)" in dialplan
    assert f"[kt-{slug}-class-fallback]\nexten => 112," in dialplan
    assert f"exten => _[0-9*#+]!,1,Set(__KALLIOPE_PBX={slug})" in dialplan
    assert pjsip.count("type = endpoint") == 3 and "set_var = KALLIOPE_FROM_EXTEN=101" in pjsip
    assert f"context = kt-{slug}-phones" in pjsip and f"tenantid = {slug}" in pjsip
    # The passwords handed out once never reach the file; their digests do.
    secrets = [pw for c in created for pw in c.new_credentials.values()]
    assert len(secrets) == 3 and not any(pw in pjsip for pw in secrets)
    for user, pw in (kv for c in created for kv in c.new_credentials.items()):
        assert f"md5_cred = {ext_accounts.ha1(user, 'kalliope', pw)}" in pjsip
    lab_files = render(db, pbx, LAB_DEVICE).files
    assert "Local/101@kt-lab-room/n" in lab_files[f"kalliope/extensions_{slug}.conf"]


def test_daily_series_per_alarm_attempts_and_cancel(db: Session, pbx: Pbx) -> None:
    from datetime import date

    from kalliope_tel.wakeup import services as wakeup
    from kalliope_tel.wakeup.exceptions import InvalidAlarm

    services.create_room(db, pbx, "101", "x", "std")
    start = date.today() + timedelta(days=1)
    series = wakeup.set_daily(db, pbx, "101", time(7, 30), start, start + timedelta(days=4), attempts=5)
    assert len(series) == 5 and len({a.series for a in series}) == 1
    assert [a.due_at.date() for a in series] == [start + timedelta(days=i) for i in range(5)]
    assert all(a.due_at.hour == 7 and a.due_at.minute == 30 for a in series)  # PBX timezone is UTC here
    views = wakeup.list_active(db, pbx, "101")
    assert [v.attempts for v in views] == [5] * 5
    with pytest.raises(InvalidAlarm, match="attempts"):
        wakeup.set_alarm(db, pbx, "101", datetime.now(UTC) + timedelta(hours=1), attempts=11)
    assert wakeup.cancel_alarm(db, pbx, series[2].id, series=True) == 5
    assert wakeup.list_active(db, pbx) == []
    with pytest.raises(InvalidAlarm, match="past"):
        wakeup.set_alarm(db, pbx, "101", datetime.now(UTC) - timedelta(minutes=1))


def test_outcomes_written_together_each_get_their_own_result(db: Session, pbx: Pbx) -> None:
    """The wake-up engine's group commit: one call for many attempts; an
    unknown attempt fails alone, a repeated report changes nothing."""
    from kalliope_tel.wakeup import services as wakeup
    from kalliope_tel.wakeup.exceptions import AlarmNotFound
    from kalliope_tel.wakeup.models import AlarmAttempt, AlarmEvent, AttemptOutcome

    wakeup.update_settings(db, pbx, attempts=2, interval=120)
    for room in ("201", "202", "203"):
        services.create_room(db, pbx, room, "x", "std")
        wakeup.set_alarm(db, pbx, room, datetime.now(UTC) + timedelta(hours=1))
    db.execute(update(Alarm).values(due_at=datetime.now(UTC), next_attempt_at=datetime.now(UTC)))
    claims = sorted(wakeup.claim_due(db, pbx, "n1"), key=lambda c: c.alarm_id)
    assert len(claims) == 3
    now = datetime.now(UTC)
    wakeup.mark_originated_many(db, [(c.alarm_id, c.attempt, now) for c in claims])
    wakeup.add_events(db, [(c.alarm_id, c.attempt, now, "originated", "x" * 300) for c in claims])
    a, b, c = claims
    changes_before = db.scalar(select(func.max(Change.id))) or 0
    loaded = db.scalars(select(AlarmAttempt)).all()  # copies the Core writes must not leave stale
    states = wakeup.complete_attempts(
        db,
        [
            (a.alarm_id, a.attempt, AttemptOutcome.CONFIRMED, ""),
            (999_999, 1, AttemptOutcome.CONFIRMED, ""),
            (b.alarm_id, b.attempt, AttemptOutcome.NO_ANSWER, "no answer"),
            (a.alarm_id, a.attempt, AttemptOutcome.NO_ANSWER, "late duplicate"),
        ],
    )
    assert states[0] is AlarmState.CONFIRMED
    assert isinstance(states[1], AlarmNotFound)
    assert states[2] is AlarmState.SCHEDULED  # 1 of 2 attempts made: retried
    assert states[3] is AlarmState.CONFIRMED  # the duplicate changed nothing
    rows = {r.alarm_id: r for r in db.scalars(select(AlarmAttempt))}
    assert {r.alarm_id: r for r in loaded} == rows  # the same objects, read again
    assert db.get(Alarm, a.alarm_id).state is AlarmState.CONFIRMED  # type: ignore[union-attr]
    assert rows[a.alarm_id].outcome is AttemptOutcome.CONFIRMED and rows[a.alarm_id].originated_at is not None
    assert rows[b.alarm_id].cause == "no answer"
    assert rows[c.alarm_id].outcome is None and db.get(Alarm, c.alarm_id).state is AlarmState.IN_PROGRESS  # type: ignore[union-attr]
    assert db.get(Alarm, b.alarm_id).next_attempt_at is not None  # type: ignore[union-attr]
    events = db.scalars(select(AlarmEvent)).all()
    assert len(events) == 3 and {len(e.detail) for e in events} == {200}
    # The panels hear of the two alarms that moved on, not of the one still ringing.
    rooms = {r.id: r.extension for r in db.scalars(select(Room))}
    changed = db.scalars(select(Change.room_id).where(Change.id > changes_before)).all()
    assert sorted(rooms[r] for r in changed) == ["201", "202"]
    with pytest.raises(AlarmNotFound):
        wakeup.complete_attempt(db, 999_999, 1, AttemptOutcome.CONFIRMED)


def test_scheduler_claims_only_for_pbxs_with_alarms_due_on_its_asterisk(db: Session, pbx: Pbx) -> None:
    from kalliope_tel.tenancy.models import AsteriskServer
    from kalliope_tel.tenancy.services import create_pbx
    from kalliope_tel.wakeup import services as wakeup

    db.add(AsteriskServer(name="b"))
    db.flush()
    idle, on_b = create_pbx(db, "idle", "Idle"), create_pbx(db, "on_b", "On B", asterisk="b")
    for tenant in (pbx, idle, on_b):
        if tenant is not pbx:
            services.create_template(db, tenant, "std")
        services.create_room(db, tenant, "101", "x", "std")
        wakeup.set_alarm(db, tenant, "101", datetime.now(UTC) + timedelta(hours=1))
    assert wakeup.due_pbxs(db) == []
    db.execute(update(Alarm).where(Alarm.pbx_id != idle.id).values(next_attempt_at=datetime.now(UTC)))
    default, b = wakeup.PbxRef(pbx.id, pbx.slug), wakeup.PbxRef(on_b.id, "on_b")
    assert wakeup.due_pbxs(db) == sorted([default, b])
    assert wakeup.due_pbxs(db, asterisk="") == [default]
    assert wakeup.due_pbxs(db, asterisk="b") == [b]
    assert wakeup.due_pbxs(db, asterisk="c") == []
    (claim,) = wakeup.claim_due(db, b, "n1")
    assert claim.pbx_slug == "on_b" and claim.extension == "101"
    assert wakeup.due_pbxs(db) == [default]  # claimed: in progress, no longer due


def test_pbx_name_for_per_call_paths(db: Session, pbx: Pbx) -> None:
    """The FastAGI diagnostic's read: the default PBX, one by slug, an unknown slug refused."""
    from kalliope_tel.tenancy.exceptions import PbxNotFound
    from kalliope_tel.tenancy.services import create_pbx, pbx_display_name

    create_pbx(db, "acme", "Acme Hotel")
    db.flush()
    conn = db.connection()
    assert pbx_display_name(conn) == pbx.name
    assert pbx_display_name(conn, "acme") == "Acme Hotel"
    with pytest.raises(PbxNotFound):
        pbx_display_name(conn, "nosuch")
