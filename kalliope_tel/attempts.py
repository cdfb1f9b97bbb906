"""Counted attempts: how many times a key was tried in its current window.

One mechanism for every limit on guessing (web logins, Mail2Fax PINs): an
attempt adds one to its key in a single upsert, and reads the count back
in the same statement, before anything is checked. Guesses made in
parallel on several nodes are therefore counted exactly; a count of audit
rows, read and then compared, let them through. Keys name their use
(``login:address:<ip>``, ``m2f-pin:sender:<address>``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy import Integer, String, case, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from kalliope_tel.catalogue import Term
from kalliope_tel.db.base import Base, UTCDateTime, utcnow
from kalliope_tel.errors import KalliopeError

if TYPE_CHECKING:
    from sqlalchemy import Table


class AttemptCounter(Base):
    __tablename__ = "attempt_counter"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class TooManyAttempts(KalliopeError):
    def __init__(self, retry_after: int, what: str = "attempts.logins") -> None:
        super().__init__("attempts.too_many", what=Term(what), retry_after=retry_after)
        self.retry_after = retry_after


def attempt(
    session: Session, key: str, allowed: int, window: timedelta, *, what: str, now: datetime | None = None
) -> int:
    """Count one attempt on ``key``; raise ``TooManyAttempts`` past ``allowed``
    in the window (the caller's transaction then rolls the count back, so a
    refused attempt is not counted). Returns the count, this one included."""
    now = now or utcnow()
    count, started = _bump(session, key[:400], now, now - window)
    if count > allowed:
        raise TooManyAttempts(max(1, int((started + window - now).total_seconds()) + 1), what)
    return count


def forget(session: Session, key: str) -> None:
    """Start ``key`` afresh (the right PIN or password was given)."""
    session.execute(delete(AttemptCounter).where(AttemptCounter.key == key[:400]))


def give_back(session: Session, key: str) -> None:
    """Take back one attempt counted on ``key`` (it turned out right): a
    shared key (an office's one public address) counts guesses, not logins."""
    session.execute(
        update(AttemptCounter)
        .where(AttemptCounter.key == key[:400], AttemptCounter.count > 0)
        .values(count=AttemptCounter.count - 1)
    )


def prune(session: Session, older_than: timedelta = timedelta(days=1), now: datetime | None = None) -> int:
    result = session.execute(delete(AttemptCounter).where(AttemptCounter.window_start < (now or utcnow()) - older_than))
    return int(getattr(result, "rowcount", 0) or 0)


def _bump(session: Session, key: str, now: datetime, expired: datetime) -> tuple[int, datetime]:
    """One more on ``key`` (a new window when its window has passed)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = cast("Table", AttemptCounter.__table__)
    fresh = table.c.window_start <= expired
    statement = (
        insert(table)
        .values(key=key, window_start=now, count=1)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((fresh, 1), else_=table.c.count + 1),
                "window_start": case((fresh, now), else_=table.c.window_start),
            },
        )
        .returning(table.c.count, table.c.window_start)
    )
    count, started = session.execute(statement).one()
    return int(count), started
