"""Send jobs: queue, claim within the limits, record attempts, retry,
cancel, and recover attempts whose node died.

States: queued -> dialling -> sending -> sent; a failed attempt goes to
waiting (retry at the instance's interval) or, with no attempts left, failed;
queued or waiting jobs can be cancelled, and a job cancelled while its call
is up is hung up by the node carrying it. Callers own the transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.asterisk.patterns import matches
from kalliope_tel.catalogue import Term
from kalliope_tel.db import leases
from kalliope_tel.db.base import utcnow
from kalliope_tel.dialplan.naming import context
from kalliope_tel.extensions.models import OutboundClass
from kalliope_tel.fax import deliveries, limits
from kalliope_tel.fax.config import Effective, effective, get_instance, options_for, permission_of
from kalliope_tel.fax.exceptions import InvalidValue, NotAllowed, NotFound, Refused
from kalliope_tel.fax.models import Direction, FaxAttempt, FaxInstance, FaxJob, FaxSlot, JobState, Media
from kalliope_tel.fax.session import FaxOptions
from kalliope_tel.nodes import gone_after, gone_nodes
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import User

# An attempt is abandoned if its node neither ends it nor beats for this long.
# Past its call's limit, an attempt's lease runs this much longer before
# another node counts it abandoned (its call is over by then, one way or another).
LEASE_MARGIN = timedelta(minutes=5)
MIN_CALL_SECONDS = 900.0


def call_seconds(pages: int) -> float:
    """How long a sending call may last: 15 minutes, or more for a long fax.
    Training and negotiation take up to two minutes; a page at the slowest
    rate a receiver may choose (2400 bit/s, fine resolution, ECM resends) up
    to 90 s. A fixed cap failed long jobs on every attempt, each time after
    sending most of their pages again."""
    return max(MIN_CALL_SECONDS, 120.0 + 90.0 * max(pages, 1))


ACTIVE = (JobState.DIALLING, JobState.SENDING)


@dataclass(frozen=True)
class SendClaim:
    job_id: int
    attempt: int
    pbx_slug: str
    instance: str
    number: str
    endpoint: str  # Local channel through the instance's outbound class
    document: str  # relative to the data directory
    options: FaxOptions
    slot_id: int
    call_id: str
    pages: int = 1

    @property
    def max_seconds(self) -> float:
        return call_seconds(self.pages)


def check_number(session: Session, pbx: Pbx, values: Effective, number: str) -> OutboundClass:
    """The routing class the number goes out through; Refused if none may."""
    try:
        number = confgate.number(number, "what.fax_number")
    except confgate.UnsafeValue as exc:
        raise Refused(exc.code, **exc.params) from None
    if values.outbound_class_id is None:
        raise Refused("fax.no_class", instance=values.name)
    cls = session.get(OutboundClass, values.outbound_class_id)
    assert cls is not None
    if not any(matches(p, number) for p in cls.patterns):
        raise Refused("fax.number_forbidden", number=number, cls=cls.name, instance=values.name)
    return cls


def check_sender(session: Session, pbx: Pbx, instance: FaxInstance, user: User | None) -> Effective:
    values = effective(session, instance)
    if not values.enabled:
        raise Refused("fax.instance_disabled", instance=instance.name)
    if not values.send_enabled:
        raise Refused("fax.sending_off", instance=instance.name)
    if user is not None:
        perm = permission_of(session, instance.id, user.id)
        if perm is None or not perm.may_send:
            raise NotAllowed("fax.may_not_send", user=user.name, instance=instance.name)
    return values


def submit(
    session: Session,
    pbx: Pbx,
    instance_name: str,
    user: User | None,
    number: str,
    *,
    document: str,
    pages: int,
    sources: list[str],
    at: datetime | None = None,
    origin: str = "cli",
) -> FaxJob:
    """Queue a fax whose pages are ready (``document``: TIFF, relative to the data dir)."""
    instance = get_instance(session, pbx, instance_name)
    values = check_sender(session, pbx, instance, user)
    check_number(session, pbx, values, number)
    if pages < 1:
        raise InvalidValue("fax.no_pages")
    job = FaxJob(
        pbx_id=pbx.id,
        instance_id=instance.id,
        user_id=user.id if user else None,
        number=number,
        pages=pages,
        document=document,
        sources=sources,
        origin=origin,
        next_attempt_at=at or utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, pbx: Pbx, job_id: int) -> FaxJob:
    job = session.scalars(select(FaxJob).where(FaxJob.pbx_id == pbx.id, FaxJob.id == job_id)).first()
    if job is None:
        raise NotFound("fax.no_job", id=job_id)
    return job


def cancel(session: Session, pbx: Pbx, job_id: int, user: User | None = None) -> FaxJob:
    job = get_job(session, pbx, job_id)
    if user is not None and job.user_id != user.id:
        perm = permission_of(session, job.instance_id, user.id)
        if perm is None or not perm.may_send:
            raise NotAllowed("fax.may_not_cancel", user=user.name, id=job_id)
    if job.state.final:
        raise Refused("fax.job_final", id=job_id, state=Term(f"state.{job.state.value}"))
    in_call = job.state in ACTIVE
    job.state = JobState.CANCELLED
    job.reason = f"cancelled during attempt {job.attempts_made}" if in_call else "cancelled"
    job.finished_at = utcnow()
    session.flush()
    return job


def cancelled_among(session: Session, job_ids: list[int]) -> set[int]:
    if not job_ids:
        return set()
    return set(session.scalars(select(FaxJob.id).where(FaxJob.id.in_(job_ids), FaxJob.state == JobState.CANCELLED)))


def claim_due(session: Session, pbx: Pbx, node: str, room: int, now: datetime | None = None) -> list[SendClaim]:
    """Claim due jobs this node has ``room`` for, each within the limits (a
    job over a limit stays queued: it waits for a call to end)."""
    now = now or utcnow()
    if room <= 0:
        return []
    due = session.scalars(
        select(FaxJob)
        .where(
            FaxJob.pbx_id == pbx.id,
            FaxJob.state.in_((JobState.QUEUED, JobState.WAITING)),
            FaxJob.next_attempt_at <= now,
        )
        .order_by(FaxJob.next_attempt_at, FaxJob.id)
        .limit(room * 4)
        .with_for_update(skip_locked=True)
    ).all()
    claims: list[SendClaim] = []
    for job in due:
        if len(claims) >= room:
            break
        instance = session.get(FaxInstance, job.instance_id)
        assert instance is not None
        values = effective(session, instance)
        # Unique on the Asterisk, not only in this store: a second store on
        # the same Asterisk (another install, the test suite's other
        # database) counts jobs from 1 too, and ARI refuses an id in use (409).
        call_id = f"kt-fax-{job.id}-{job.attempts_made + 1}-{secrets.token_hex(4)}"
        try:
            if not values.enabled or not values.send_enabled:
                raise Refused("fax.stopped_sending", instance=instance.name)
            cls = check_number(session, pbx, values, job.number)
        except Refused as exc:
            _close(job, JobState.FAILED, str(exc), now)
            continue
        slot = limits.admit(session, pbx, values, Direction.OUTBOUND, node, call_id)
        if isinstance(slot, str):
            continue  # over a limit: stays due, claimed when a call ends
        job.state = JobState.DIALLING
        job.attempts_made += 1
        leases.take(job, node, now + timedelta(seconds=call_seconds(job.pages)) + LEASE_MARGIN)
        session.add(
            FaxAttempt(
                pbx_id=pbx.id, job_id=job.id, number=job.attempts_made, node=node, call_id=call_id, started_at=now
            )
        )
        claims.append(
            SendClaim(
                job.id,
                job.attempts_made,
                pbx.slug,
                instance.name,
                job.number,
                f"Local/{job.number}@{context(pbx.slug, 'class', cls.name)}",
                job.document,
                options_for(values),
                slot.id,
                call_id,
                job.pages,
            )
        )
    session.flush()
    return claims


def mark_sending(session: Session, job_id: int, attempt: int) -> None:
    job = session.get(FaxJob, job_id)
    if job is not None and job.state is JobState.DIALLING and job.attempts_made == attempt:
        job.state = JobState.SENDING


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    reason: str
    pages: int = 0
    bit_rate: int = 0
    ecm: bool = False
    remote_ident: str = ""
    media: Media = Media.ENGINE


def complete_attempt(session: Session, job_id: int, attempt: int, result: AttemptResult, slot_id: int | None) -> FaxJob:
    """Record an attempt's outcome and move the job on: sent, waiting to
    retry, or failed. A job cancelled meanwhile stays cancelled."""
    now = utcnow()
    limits.release(session, slot_id)
    job = session.get(FaxJob, job_id)
    assert job is not None
    row = session.scalars(select(FaxAttempt).where(FaxAttempt.job_id == job_id, FaxAttempt.number == attempt)).one()
    if row.ended_at is not None:
        return job  # recorded already (a recovery got there first)
    row.ended_at, row.ok, row.reason = now, result.ok, result.reason[:300]
    row.pages, row.bit_rate, row.ecm = result.pages, result.bit_rate, result.ecm
    row.remote_ident, row.media = result.remote_ident[:40], result.media
    if job.state is JobState.CANCELLED or job.attempts_made != attempt:
        return job
    if result.ok:
        _close(job, JobState.SENT, "", now)
        deliveries.owe_report(session, job.pbx_id, job.id)
        return job
    instance = session.get(FaxInstance, job.instance_id)
    assert instance is not None
    values = effective(session, instance)
    if job.attempts_made >= values.max_attempts:
        _close(job, JobState.FAILED, f"{result.reason} (after {job.attempts_made} attempt(s))", now)
        deliveries.owe_report(session, job.pbx_id, job.id)
    else:
        job.state = JobState.WAITING
        job.reason = result.reason[:300]
        job.next_attempt_at = now + timedelta(minutes=values.retry_minutes)
        leases.release(job)
    return job


def _close(job: FaxJob, state: JobState, reason: str, now: datetime) -> None:
    job.state, job.reason, job.finished_at = state, reason[:300], now
    leases.release(job)


@dataclass(frozen=True)
class Abandoned:
    job_id: int
    attempt: int
    call_id: str
    node: str


def abandoned_attempts(session: Session, *, node: str | None = None) -> list[Abandoned]:
    """Attempts in progress whose node is ``node`` (restarting), or whose node
    stopped beating or whose lease ran out (None)."""
    now = utcnow()
    query = select(FaxJob, FaxAttempt).join(
        FaxAttempt, (FaxAttempt.job_id == FaxJob.id) & (FaxAttempt.number == FaxJob.attempts_made)
    )
    query = query.where(FaxJob.state.in_(ACTIVE), FaxAttempt.ended_at.is_(None))
    if node is not None:
        query = query.where(FaxJob.claimed_by == node)
    out = []
    dead = gone_nodes(session, gone_after(), now)
    for job, attempt in session.execute(query).all():
        gone = node is not None or job.claimed_by in dead or (job.lease_until is not None and job.lease_until < now)
        if gone:
            out.append(Abandoned(job.id, attempt.number, attempt.call_id, attempt.node))
    return out


def abandon(session: Session, item: Abandoned, why: str) -> FaxJob:
    """The attempt ends as failed (it may have sent some pages: the fax is sent
    again whole, the only way the recipient gets a complete document)."""
    slot = session.scalars(select(FaxSlot.id).where(FaxSlot.call_id == item.call_id)).first()
    return complete_attempt(session, item.job_id, item.attempt, AttemptResult(False, why), slot)


def attempts_of(session: Session, job_id: int) -> list[FaxAttempt]:
    return list(session.scalars(select(FaxAttempt).where(FaxAttempt.job_id == job_id).order_by(FaxAttempt.number)))
