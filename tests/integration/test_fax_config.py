"""Fax service rules on both databases, without Asterisk: users, instances,
permissions, refusals before dialling, limits, the attempt/retry state
machine, crash recovery, the register's visibility, and the gates."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from kalliope_tel.asterisk.patterns import matches
from kalliope_tel.db.base import utcnow
from kalliope_tel.fax import config, jobs, limits, register
from kalliope_tel.fax.exceptions import InvalidValue, NotAllowed, Refused
from kalliope_tel.fax.inbound import admit_inbound
from kalliope_tel.fax.models import Direction, FaxJob, JobState
from kalliope_tel.hotel.services import create_class
from kalliope_tel.tenancy.models import Pbx, ServeNode
from kalliope_tel.tenancy.services import create_pbx, get_pbx
from kalliope_tel.users.services import UserError, add_user

pytestmark = pytest.mark.integration


@pytest.fixture
def pbx(db: Session) -> Pbx:
    pbx = get_pbx(db)
    create_class(db, pbx, "faxnet", ["_5XX", "_6XX"], "kt-lab-faxnet")
    for name in ("alice", "bob", "carol"):
        add_user(db, pbx, name, f"{name}@example.com")
    config.add_instance(db, pbx, "office", "700", outbound_class="faxnet", max_attempts=3, retry_minutes=2)
    config.set_permission(db, pbx, "office", "alice", "both")
    config.set_permission(db, pbx, "office", "bob", "receive")
    config.set_permission(db, pbx, "office", "carol", "send")
    return pbx


def _user(db: Session, pbx: Pbx, name: str):  # type: ignore[no-untyped-def]
    from kalliope_tel.users.services import get_user

    return get_user(db, pbx, name)


def _job(db: Session, pbx: Pbx, number: str = "501", user: str = "alice") -> FaxJob:
    return jobs.submit(db, pbx, "office", _user(db, pbx, user), number, document="x.tif", pages=2, sources=["x.pdf"])


def test_email_unique_across_pbxs_and_case_sensitive(db: Session, pbx: Pbx) -> None:
    """One account per address: a second PBX of the same company makes the
    same person its user; another company's PBX is refused the address."""
    from kalliope_tel.tenancy import companies

    sibling = create_pbx(db, "hotel2b", "Sibling hotel")
    alice = _user(db, pbx, "alice")
    assert add_user(db, sibling, "alice", "alice@example.com").account_id == alice.account_id
    customer = companies.create_customer(db, companies.installation_partner(db), "Other Srl")
    other = create_pbx(db, "hotel2", "Second hotel", company=customer)
    with pytest.raises(UserError, match="belongs to another user"):
        add_user(db, other, "alice", "alice@example.com")
    # Compared exactly, as KalliopePBX does: another case is another address.
    assert add_user(db, other, "alice", "Alice@example.com").email == "Alice@example.com"
    for bad in ("alice@example.com\r\nBcc: x@y.z", "Alice <a@b.c>", "no-at-sign", "a@b.c,d@e.f"):
        with pytest.raises(UserError, match="not a plain address"):
            add_user(db, other, "mallory", bad)


def test_refused_before_dialling(db: Session, pbx: Pbx) -> None:
    with pytest.raises(NotAllowed, match="bob may not send"):
        _job(db, pbx, user="bob")
    with pytest.raises(Refused, match="does not allow this number"):
        _job(db, pbx, number="0612345678")
    with pytest.raises(Refused, match="fax number"):
        _job(db, pbx, number="501;Dial(x)")
    config.update_instance(db, pbx, "office", enabled=False)
    with pytest.raises(Refused, match="is disabled"):
        _job(db, pbx)
    config.update_instance(db, pbx, "office", enabled=True, send_enabled=False)
    with pytest.raises(Refused, match="sending is off"):
        _job(db, pbx)


def test_instance_values_checked(db: Session, pbx: Pbx) -> None:
    with pytest.raises(InvalidValue, match="selection"):
        config.add_instance(db, pbx, "x", "70\n1")
    with pytest.raises(InvalidValue, match="belongs to another"):
        config.add_instance(db, pbx, "x", "700")
    with pytest.raises(InvalidValue, match="Minimum rate"):
        config.add_instance(db, pbx, "x", "701", min_rate=5000)
    with pytest.raises(InvalidValue, match="Header line"):
        config.add_instance(db, pbx, "x", "701", header="a" * 51)
    with pytest.raises(InvalidValue, match="printable"):
        config.add_instance(db, pbx, "x", "701", local_ident="abc\x1b[2J")
    with pytest.raises(InvalidValue, match="rates"):
        config.add_instance(db, pbx, "x", "701", min_rate=14400, max_rate=9600)


def test_template_values_apply_unless_the_instance_sets_its_own(db: Session, pbx: Pbx) -> None:
    config.add_template(db, pbx, "slow", max_rate=9600, ecm=False, max_attempts=5)
    row = config.add_instance(db, pbx, "lobby", "701", template="slow", max_attempts=2)
    values = config.effective(db, row)
    assert (values.max_rate, values.ecm, values.max_attempts, values.min_rate) == (9600, False, 2, 2400)
    options = config.options_for(values)
    assert options.max_rate == 9600 and not options.ecm


def test_attempts_retry_at_the_interval_then_fail(db: Session, pbx: Pbx) -> None:
    job = _job(db, pbx)
    claims = jobs.claim_due(db, pbx, "node-a", 10)
    assert [c.job_id for c in claims] == [job.id] and job.state is JobState.DIALLING
    assert claims[0].endpoint == "Local/501@kt-default-class-faxnet"
    jobs.mark_sending(db, job.id, 1)
    assert job.state is JobState.SENDING
    before = utcnow()
    jobs.complete_attempt(db, job.id, 1, jobs.AttemptResult(False, "busy"), claims[0].slot_id)
    assert job.state is JobState.WAITING
    assert timedelta(minutes=2) <= job.next_attempt_at - before < timedelta(minutes=2, seconds=5)
    assert jobs.claim_due(db, pbx, "node-a", 10) == []  # not due yet
    for attempt in (2, 3):
        db.execute(update(FaxJob).where(FaxJob.id == job.id).values(next_attempt_at=utcnow()))
        (claim,) = jobs.claim_due(db, pbx, "node-a", 10)
        jobs.complete_attempt(db, job.id, attempt, jobs.AttemptResult(False, "busy"), claim.slot_id)
    assert job.state is JobState.FAILED and job.reason == "busy (after 3 attempt(s))"
    assert [a.reason for a in jobs.attempts_of(db, job.id)] == ["busy"] * 3
    assert limits.in_progress(db, pbx) == []  # every slot released


def test_limits_hold_jobs_and_refuse_inbound(db: Session, pbx: Pbx) -> None:
    config.update_settings(db, pbx, max_total=1)
    first, second = _job(db, pbx, "501"), _job(db, pbx, "502")
    (claim,) = jobs.claim_due(db, pbx, "node-a", 10)
    assert claim.job_id == first.id and second.state is JobState.QUEUED  # waits, not failed
    refusal = admit_inbound(db, pbx, config.get_instance(db, pbx, "office").id, "node-a", "call-1")
    assert not refusal.admitted and "total fax limit (1)" in refusal.reason
    jobs.complete_attempt(db, first.id, 1, jobs.AttemptResult(True, ""), claim.slot_id)
    assert [c.job_id for c in jobs.claim_due(db, pbx, "node-a", 10)] == [second.id]


def test_instance_inbound_limit_and_disabled_reception(db: Session, pbx: Pbx) -> None:
    office = config.update_instance(db, pbx, "office", max_inbound=1)
    assert admit_inbound(db, pbx, office.id, "n", "c1").admitted
    assert "inbound fax limit (1)" in admit_inbound(db, pbx, office.id, "n", "c2").reason
    config.update_instance(db, pbx, "office", receive_enabled=False)
    assert "does not receive" in admit_inbound(db, pbx, office.id, "n", "c3").reason


def test_slots_of_a_dead_node_stop_counting(db: Session, pbx: Pbx) -> None:
    config.update_settings(db, pbx, max_total=1)
    office = config.get_instance(db, pbx, "office")
    db.add(ServeNode(node="dead-node", host="h", pid=1, heartbeat_at=utcnow() - timedelta(minutes=5)))
    db.flush()
    assert admit_inbound(db, pbx, office.id, "dead-node", "c1").admitted
    # The node stopped beating: its call is over, the place is free again.
    assert admit_inbound(db, pbx, office.id, "live-node", "c2").admitted
    # ... and the reception it never recorded is in the register, once, with why.
    (lost,) = register.entries(db, pbx, direction="in")
    assert (lost["state"], lost["node"]) == ("failed", "dead-node")
    assert lost["reason"] == "the node dead-node that took the call stopped during it"
    assert limits.forget_dead_slots(db) == 0  # another node sweeping finds nothing left
    assert len(register.entries(db, pbx, direction="in")) == 1


def test_a_restarted_node_forgets_its_old_calls_not_the_ones_it_just_took(db: Session, pbx: Pbx) -> None:
    # In CI the sender claimed a job before the start-up sweep ran; the sweep
    # deleted that call's slot and a second call went past a limit of one.
    config.update_settings(db, pbx, max_total=1)
    office = config.get_instance(db, pbx, "office")
    assert admit_inbound(db, pbx, office.id, "node-a", "old-call").admitted
    started = utcnow()
    assert limits.forget_node_slots(db, "node-a", started) == 1  # the previous run's call is over
    new = _job(db, pbx, "503")
    (claim,) = jobs.claim_due(db, pbx, "node-a", 10)  # this run's call, taken before the sweep ...
    assert claim.job_id == new.id
    assert limits.forget_node_slots(db, "node-a", started) == 0  # ... which leaves it alone
    assert "total fax limit (1)" in admit_inbound(db, pbx, office.id, "node-a", "c2").reason


def test_attempts_of_a_node_that_died_are_closed_and_retried(db: Session, pbx: Pbx) -> None:
    job = _job(db, pbx)
    jobs.claim_due(db, pbx, "node-a", 10)
    (item,) = jobs.abandoned_attempts(db, node="node-a")  # node-a restarting
    assert re.fullmatch(rf"kt-fax-{job.id}-1-[0-9a-f]{{8}}", item.call_id)
    jobs.abandon(db, item, "serve stopped during the call")
    assert job.state is JobState.WAITING and job.attempts_made == 1
    assert jobs.abandoned_attempts(db, node="node-a") == []


def test_cancel(db: Session, pbx: Pbx) -> None:
    job = _job(db, pbx)
    with pytest.raises(NotAllowed):
        jobs.cancel(db, pbx, job.id, _user(db, pbx, "bob"))
    assert jobs.cancel(db, pbx, job.id, _user(db, pbx, "carol")).state is JobState.CANCELLED
    with pytest.raises(Refused, match="cancelled already"):
        jobs.cancel(db, pbx, job.id)
    assert jobs.claim_due(db, pbx, "node-a", 10) == []


def test_register_shows_each_user_what_they_may_see(db: Session, pbx: Pbx) -> None:
    from datetime import UTC, datetime

    from kalliope_tel.fax.inbound import Reception, record_received
    from kalliope_tel.fax.models import Media

    office = config.get_instance(db, pbx, "office")
    now = datetime.now(UTC)
    reception = Reception("c1", "0501234567", "700", now, now, True, "", 1, 14400, True, "REMOTE", Media.ENGINE)
    record_received(db, pbx, office.id, None, reception, None, Path("/nonexistent"))
    _job(db, pbx)
    ids = lambda user: {r["id"][:3] for r in register.entries(db, pbx, user=_user(db, pbx, user))}  # noqa: E731
    assert ids("alice") == {"in-", "out"}
    assert ids("bob") == {"in-"}
    assert ids("carol") == {"out"}
    other = create_pbx(db, "hotel3", "Other")
    add_user(db, other, "dave", "dave@example.com")
    assert register.entries(db, other) == []  # another PBX sees nothing of this one
    with pytest.raises(NotAllowed):
        register.files_of(
            db,
            pbx,
            next(r["id"] for r in register.entries(db, pbx) if r["direction"] == "out"),
            user=_user(db, pbx, "bob"),
        )


def test_asterisk_patterns() -> None:
    assert matches("_5XX", "501") and not matches("_5XX", "5011") and not matches("_5XX", "601")
    assert matches("_0[1-9]X.", "0612345") and not matches("_0[1-9]X.", "00")
    assert matches("112", "112") and not matches("112", "1120")
    assert matches("_NXX", "200") and not matches("_NXX", "100")


def test_mail_gate_refuses_header_injection() -> None:
    from kalliope_tel.mail.compose import message

    msg = message("kt@example.com", "a@example.com", "Fax\r\nBcc: evil@example.com", "body")
    assert "Bcc" not in msg.as_string().split("\n\n", 1)[0].replace("Subject: Fax Bcc", "")
    assert msg["Subject"] == "Fax Bcc: evil@example.com"
    with pytest.raises(ValueError):
        message("kt@example.com", "a@example.com\nBcc: evil@example.com", "s", "b")


def test_archive_encryption_is_authenticated() -> None:
    from kalliope_tel.fax import crypto

    key = crypto.load_key(crypto.new_key())
    blob = crypto.encrypt(key, b"%PDF-1.4 pages")
    assert crypto.decrypt(key, blob) == b"%PDF-1.4 pages"
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(crypto.CryptoError, match="changed"):
        crypto.decrypt(key, tampered)
    with pytest.raises(crypto.CryptoError, match="changed"):
        crypto.decrypt(crypto.load_key(crypto.new_key()), blob)
    with pytest.raises(crypto.CryptoError, match="32 bytes"):
        crypto.load_key("c2hvcnQ=")


def test_direction_enum_is_what_slots_store() -> None:
    assert {d.value for d in Direction} == {"inbound", "outbound"}


def test_failed_and_partial_receptions_are_recorded_with_their_reason(db: Session, pbx: Pbx, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from PIL import Image

    from kalliope_tel.fax.deliveries import deliveries_of
    from kalliope_tel.fax.inbound import Reception, record_received
    from kalliope_tel.fax.models import Media

    office = config.get_instance(db, pbx, "office")
    now = datetime.now(UTC)
    failed = Reception(
        "c1", "0501", "700", now, now, False, "The call dropped prematurely", 0, 0, False, "", Media.ENGINE
    )
    row = record_received(db, pbx, office.id, None, failed, None, tmp_path)
    assert (row.ok, row.pages, row.reason, row.document) == (False, 0, "The call dropped prematurely", "")
    assert deliveries_of(db, Direction.INBOUND, row.id) == []  # nothing to mail without pages
    pdf = tmp_path / "partial.pdf"
    Image.new("1", (1728, 2200), 1).save(pdf, "PDF", resolution=204)
    partial = Reception("c2", "0502", "700", now, now, False, "Far end cleared", 1, 9600, False, "R", Media.ASTERISK)
    row = record_received(db, pbx, office.id, None, partial, pdf, tmp_path)
    assert (row.ok, row.pages, row.reason) == (False, 1, "Far end cleared")
    assert (tmp_path / row.document).exists() and row.file_name.startswith("F00502_T700_")
    owed = sorted(d.target for d in deliveries_of(db, Direction.INBOUND, row.id))
    assert owed == ["alice@example.com", "bob@example.com"]  # reception permission, not carol
    states = {r["id"]: r["state"] for r in register.entries(db, pbx, direction="in")}
    assert sorted(states.values()) == ["failed", "partial"]
