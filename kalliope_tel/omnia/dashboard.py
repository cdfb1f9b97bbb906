"""The Console's dashboard: customers acquired per month, and the totals of
customers, PBXs and licences with their change against the previous month.

Months are calendar months in UTC. A total "at a month" counts what was
created before the month ended and still exists (a deleted customer leaves
the history with its rows). Licences (Start and Plus) are counted from the
extensions Omnia Manager gives them; until extensions carry a licence both
are 0.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.tenancy.models import Company, CompanyKind, Pbx


def month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def months_back(today: date, count: int) -> list[tuple[int, int]]:
    """The ``count`` months up to and including ``today``'s, oldest first."""
    out = []
    year, month = today.year, today.month
    for _ in range(count):
        out.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def _next(year: int, month: int) -> tuple[int, int]:
    return (year, month + 1) if month < 12 else (year + 1, 1)


def _change(now: int, before: int) -> float | None:
    """Per cent against the previous month (None when there was nothing to compare with)."""
    return None if before == 0 else round((now - before) * 100.0 / before, 1)


def dashboard(session: Session, company: Company, today: date, months: int = 12) -> dict[str, Any]:
    is_partner = company.kind is CompanyKind.PARTNER
    customers = (
        list(session.scalars(select(Company.created_at).where(Company.parent_id == company.id))) if is_partner else []
    )
    owners = select(Company.id).where((Company.id == company.id) | (Company.parent_id == company.id))
    pbxs = list(session.scalars(select(Pbx.created_at).where(Pbx.company_id.in_(owners))))
    series = months_back(today, months + 1)

    def before(stamps: list[datetime], year: int, month: int) -> int:
        end = month_start(*_next(year, month))
        return sum(1 for s in stamps if s < end)

    def within(stamps: list[datetime], year: int, month: int) -> int:
        start, end = month_start(year, month), month_start(*_next(year, month))
        return sum(1 for s in stamps if start <= s < end)

    (py, pm), (ty, tm) = series[-2], series[-1]

    def card(stamps: list[datetime]) -> dict[str, Any]:
        now, prev = before(stamps, ty, tm), before(stamps, py, pm)
        return {"total": now, "previous": prev, "change": _change(now, prev)}

    licences = {"start": 0, "plus": 0}
    return {
        "company": company.id,
        "acquired": [{"month": f"{y:04d}-{m:02d}", "customers": within(customers, y, m)} for y, m in series[1:]],
        "customers": card(customers) if is_partner else None,
        "pbxs": card(pbxs),
        "licences": {"total": sum(licences.values()), "previous": 0, "change": None, **licences},
    }
