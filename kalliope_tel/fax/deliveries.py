"""What a fax owes once its call is over: an e-mail per recipient and a copy
per archival path. Each is a row retried with backoff until done, so a mail
server or SFTP host that is down delays a delivery and never loses it; a
permanent refusal (5xx, a bad address) ends it with the reason recorded.
Callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.backoff import Backoff
from kalliope_tel.db import leases
from kalliope_tel.db.base import utcnow
from kalliope_tel.fax.config import list_archive_paths
from kalliope_tel.fax.models import DeliveryKind, Direction, FaxDelivery
from kalliope_tel.tenancy.models import Pbx

LEASE = timedelta(minutes=5)
MAX_TRIES = 30  # ~ a day with the backoff below


RETRIES = Backoff(first=30, cap=3600)


def owe_mail(session: Session, pbx: Pbx, direction: Direction, fax_id: int, address: str) -> None:
    session.add(FaxDelivery(pbx_id=pbx.id, kind=DeliveryKind.MAIL, direction=direction, fax_id=fax_id, target=address))


def owe_report(session: Session, pbx_id: int, job_id: int) -> None:
    session.add(
        FaxDelivery(pbx_id=pbx_id, kind=DeliveryKind.REPORT, direction=Direction.OUTBOUND, fax_id=job_id, target="")
    )


def owe_archive(session: Session, pbx: Pbx, direction: Direction, fax_id: int, files: dict[str, str]) -> None:
    """One delivery per enabled archival path, in the paths' order."""
    for path in list_archive_paths(session, pbx):
        if path.enabled:
            session.add(
                FaxDelivery(
                    pbx_id=pbx.id,
                    kind=DeliveryKind.ARCHIVE,
                    direction=direction,
                    fax_id=fax_id,
                    target=str(path.id),
                    payload=files,
                )
            )


@dataclass(frozen=True)
class DeliveryClaim:
    id: int
    pbx_id: int
    kind: DeliveryKind
    direction: Direction
    fax_id: int
    target: str
    payload: dict[str, str]
    attempt: int


def claim(session: Session, node: str, limit: int = 20, now: datetime | None = None) -> list[DeliveryClaim]:
    now = now or utcnow()
    due = [FaxDelivery.done.is_(False), FaxDelivery.next_try_at <= now]
    order = [FaxDelivery.next_try_at, FaxDelivery.id]
    out = []
    for row in leases.claim(session, FaxDelivery, due, order, limit, node, LEASE, now):
        row.attempts += 1
        out.append(
            DeliveryClaim(
                row.id, row.pbx_id, row.kind, row.direction, row.fax_id, row.target, dict(row.payload), row.attempts
            )
        )
    session.flush()
    return out


def finish(session: Session, claim: DeliveryClaim, node: str, error: str | None, *, permanent: bool = False) -> bool:
    """Record the outcome of ``node``'s claim; False (and nothing written)
    when the claim is no longer its own: its lease ran out and another node
    took the delivery, whose outcome is that node's to record."""
    row = leases.held(session, FaxDelivery, claim.id, node)
    if row is None or row.done or row.attempts != claim.attempt:
        return False
    leases.release(row)
    now = utcnow()
    if error is None:
        row.done, row.done_at, row.last_error = True, now, ""
    else:
        row.last_error = error[:2000]
        again = leases.next_try(row.attempts, MAX_TRIES, RETRIES, now, permanent=permanent)
        if again is None:
            row.done, row.done_at = True, now  # given up: last_error says why
        else:
            row.next_try_at = again
    session.flush()
    return True


def deliveries_of(session: Session, direction: Direction, fax_id: int) -> list[FaxDelivery]:
    return list(
        session.scalars(
            select(FaxDelivery)
            .where(FaxDelivery.direction == direction, FaxDelivery.fax_id == fax_id)
            .order_by(FaxDelivery.id)
        )
    )
