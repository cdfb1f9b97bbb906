"""The Console's dashboard against the store: 24 months of customers and
PBXs seeded with their creation dates, every figure compared with a count
the test asks the database for itself (both stores)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kalliope_tel.omnia.dashboard import dashboard
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.models import Company, Pbx
from kalliope_tel.tenancy.services import create_pbx

pytestmark = [pytest.mark.integration]
TODAY = date(2026, 12, 6)


def _month(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def _months(count: int) -> list[tuple[int, int]]:
    out, year, month = [], TODAY.year, TODAY.month
    for _ in range(count):
        out.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def _after(year: int, month: int) -> datetime:
    return _month(year + (month == 12), month % 12 + 1)


def test_the_dashboard_equals_the_stores_counts_over_24_months(db: Session) -> None:
    rng = random.Random(27)
    partner = companies.installation_partner(db)
    other = companies.create_partner(db, "Another partner")  # its customers are not counted
    companies.create_customer(db, other, "Not ours")
    n = 0
    for year, month in _months(25):
        for _ in range(rng.randint(0, 6)):
            n += 1
            customer = companies.create_customer(db, partner, f"Customer {n}")
            customer.created_at = _month(year, month) + timedelta(days=rng.randint(0, 27), hours=rng.randint(0, 23))
            for k in range(rng.randint(0, 2)):
                pbx = create_pbx(db, f"c{n}p{k}", f"PBX {n}.{k}", company=customer)
                pbx.created_at = customer.created_at + timedelta(days=rng.randint(0, 40))
    db.flush()
    figures = dashboard(db, partner, TODAY, months=24)

    def count(model: type, *where: object) -> int:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    mine = Company.parent_id == partner.id
    owned = Pbx.company_id.in_(select(Company.id).where((Company.id == partner.id) | mine))
    expected_months = [
        {"month": f"{y:04d}-{m:02d}",
         "customers": count(Company, mine, Company.created_at >= _month(y, m), Company.created_at < _after(y, m))}
        for y, m in _months(24)
    ]  # fmt: skip
    assert figures["acquired"] == expected_months
    assert sum(m["customers"] for m in expected_months) > 24  # the seed is not empty
    this, last = _months(2)[1], _months(2)[0]
    customers_now, customers_before = (
        count(Company, mine, Company.created_at < _after(*this)),
        count(Company, mine, Company.created_at < _after(*last)),
    )
    assert figures["customers"]["total"] == customers_now
    assert figures["customers"]["previous"] == customers_before
    assert figures["customers"]["change"] == round((customers_now - customers_before) * 100 / customers_before, 1)
    pbxs_now = count(Pbx, owned, Pbx.created_at < _after(*this))
    assert figures["pbxs"]["total"] == pbxs_now
    assert figures["pbxs"]["previous"] == count(Pbx, owned, Pbx.created_at < _after(*last))
    # A customer's own dashboard: its PBXs, no customers.
    first = db.scalars(select(Company).where(mine).order_by(Company.id)).first()
    assert first is not None
    own = dashboard(db, first, TODAY)
    assert own["customers"] is None and own["pbxs"]["total"] == count(Pbx, Pbx.company_id == first.id)
