"""The one claim/lease/finish mechanism for rows that nodes share: work owed
(fax deliveries and reports, LAM invitations) and the calls nodes place (fax
jobs, wake-up alarms).

A node claims a row by writing its name and a lease end; while the lease
runs no other node takes it. Whoever finishes checks first that the row is
still its own (``held``): a node whose lease ran out and was replaced must
not record an outcome over the replacement's. A node that died leaves its
lease to run out, and the row is claimed again.

Rows of work owed also carry when they are due and their tries: ``claim``
takes the due ones, ``finish`` records an outcome, retrying with the one
backoff (``kalliope_tel.backoff``) or giving up. Calls carry their own states
and attempt rows, and use ``take``/``release``/``expired`` for the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, String, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kalliope_tel.backoff import Backoff
from kalliope_tel.db.base import UTCDateTime

L = TypeVar("L", bound="Leased")


class Leased:
    """Columns of a row that one node at a time works on."""

    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


def free(model: type[Leased], now: datetime) -> ColumnElement[bool]:
    """Rows nobody holds: never claimed, or their holder's lease ran out."""
    return or_(model.lease_until.is_(None), model.lease_until < now)


def expired(model: type[Leased], now: datetime) -> ColumnElement[bool]:
    """Rows claimed by a node whose lease ran out (it died or hung)."""
    return model.lease_until < now


def take(row: Leased, node: str, until: datetime) -> None:
    row.claimed_by, row.lease_until = node, until


def release(row: Leased) -> None:
    row.claimed_by, row.lease_until = None, None


def claim(
    session: Session,
    model: type[L],
    due: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    limit: int,
    node: str,
    lease: timedelta,
    now: datetime,
) -> list[L]:
    """Take up to ``limit`` rows of ``model`` that are ``due`` and that nobody
    holds, in ``order_by`` order. Rows another node is claiming this very
    moment are skipped, not waited for (SKIP LOCKED on PostgreSQL)."""
    query = select(model).where(*due, free(model, now)).order_by(*order_by).limit(limit)
    rows = list(session.scalars(query.with_for_update(skip_locked=True)))
    for row in rows:
        take(row, node, now + lease)
    session.flush()
    return rows


def held(session: Session, model: type[L], row_id: int, node: str) -> L | None:
    """The row, locked, if ``node`` still holds it; None when its lease ran
    out and another node took it (that node records the outcome). The caller
    checks the rest (the claim's attempt) and then ``release``s it."""
    row = session.get(model, row_id, with_for_update=True)
    if row is None or row.claimed_by != node:
        return None
    return row


def next_try(tries: int, max_tries: int, backoff: Backoff, now: datetime, *, permanent: bool) -> datetime | None:
    """When to try again after ``tries`` failed tries; None: give up (a
    permanent failure, or the last try)."""
    if permanent or tries >= max_tries:
        return None
    return now + backoff.after(tries)
