"""Who a logged-in person is, as every request sees them: their account,
the PBX seats and company memberships that are live (neither the company
nor its partner suspended), the company chosen and the view.

No HTTP here; ``access`` opens sessions and resolves cookies to these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.accounts.models import Account, CompanyMember, ConsoleRole, ManagerRole
from kalliope_tel.tenancy.models import Company, CompanyKind, CompanyStatus, Pbx
from kalliope_tel.users.models import Role, User
from kalliope_tel.web.models import WebSession


class Stage(enum.StrEnum):
    """How far a session's login has come."""

    SECOND_FACTOR = "second_factor"  # the password was right; the code is owed
    ENROL = "enrol"  # a second factor is required and must be enrolled first
    IN = "in"


@dataclass(frozen=True)
class Seat:
    """A PBX the person is a user of, with their roles there."""

    user_id: int
    name: str
    pbx_id: int
    pbx_slug: str
    pbx_name: str
    timezone: str
    roles: frozenset[Role]


@dataclass(frozen=True)
class CompanySeat:
    """A company the person is a member of (Omnia's Console and Manager)."""

    company_id: int
    name: str
    kind: CompanyKind
    console: ConsoleRole | None
    manager: ManagerRole | None
    manage_customers: bool


_NO_SEAT = Seat(0, "", 0, "", "", "UTC", frozenset())


@dataclass(frozen=True)
class Principal:
    """A logged-in person, as every request sees them: their account, the
    PBX seats and company memberships that are live (not suspended), and,
    for the PBX panels, the seat the request is in (``at``; the first seat
    by default)."""

    account_id: int
    email: str
    full_name: str
    csrf_token: str
    token_hash: str
    stage: Stage
    seats: tuple[Seat, ...]
    companies: tuple[CompanySeat, ...]
    company_id: int | None  # chosen after login (None: not yet, or none)
    view_company_id: int | None  # the chosen company, or one of a partner's customers
    seat: Seat = _NO_SEAT

    @property
    def user_id(self) -> int:
        return self.seat.user_id

    @property
    def name(self) -> str:
        return self.seat.name

    @property
    def pbx_id(self) -> int:
        return self.seat.pbx_id

    @property
    def pbx_slug(self) -> str:
        return self.seat.pbx_slug

    @property
    def pbx_name(self) -> str:
        return self.seat.pbx_name

    @property
    def timezone(self) -> str:
        return self.seat.timezone

    @property
    def roles(self) -> frozenset[Role]:
        return self.seat.roles

    def may(self, *roles: Role) -> bool:
        """Holds one of ``roles`` in the current PBX (an administrator holds every role of their PBX)."""
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)

    def at(self, pbx_slug: str) -> Principal | None:
        """The same person in PBX ``pbx_slug``, or None when they are no user of it."""
        for seat in self.seats:
            if seat.pbx_slug == pbx_slug:
                return replace(self, seat=seat)
        return None

    def company(self) -> CompanySeat | None:
        """The membership of the chosen company."""
        return next((c for c in self.companies if c.company_id == self.company_id), None)


def second_factor_required(session: Session, account: Account) -> bool:
    """Every Console or Manager member needs one, and so does a PBX user of
    a company that asks it of its PBX users."""
    if any(
        m.needs_second_factor
        for m in session.scalars(select(CompanyMember).where(CompanyMember.account_id == account.id))
    ):
        return True
    return (
        session.scalar(
            select(Company.id)
            .join(Pbx, Pbx.company_id == Company.id)
            .join(User, User.pbx_id == Pbx.id)
            .where(User.account_id == account.id, Company.pbx_users_second_factor.is_(True))
            .limit(1)
        )
        is not None
    )


def _live(company: Company, parents: dict[int, Company]) -> bool:
    """Active, and so is its partner."""
    parent = parents.get(company.parent_id) if company.parent_id is not None else None
    return company.status is CompanyStatus.ACTIVE and (parent is None or parent.status is CompanyStatus.ACTIVE)


def _companies(session: Session, ids: set[int]) -> dict[int, Company]:
    rows = {c.id: c for c in session.scalars(select(Company).where(Company.id.in_(ids)))} if ids else {}
    parents = {c.parent_id for c in rows.values() if c.parent_id is not None} - rows.keys()
    if parents:
        rows.update({c.id: c for c in session.scalars(select(Company).where(Company.id.in_(parents)))})
    return rows


def _pbx_seats(session: Session, account: Account, *, live: bool = True) -> tuple[Seat, ...]:
    """The PBXs the account has a role in (``live``: whose company, and its
    partner, are active)."""
    users = session.execute(
        select(User, Pbx).join(Pbx, Pbx.id == User.pbx_id).where(User.account_id == account.id).order_by(Pbx.name)
    ).all()
    companies = _companies(session, {p.company_id for _, p in users})
    return tuple(
        Seat(u.id, u.name, p.id, p.slug, p.name, p.timezone, u.role_set)
        for u, p in users
        if u.role_set and p.company_id in companies and (not live or _live(companies[p.company_id], companies))
    )


def _company_seats(session: Session, account: Account, *, live: bool = True) -> tuple[CompanySeat, ...]:
    members = list(session.scalars(select(CompanyMember).where(CompanyMember.account_id == account.id)))
    companies = _companies(session, {m.company_id for m in members})
    seats = [
        CompanySeat(
            m.company_id,
            companies[m.company_id].legal_name,
            companies[m.company_id].kind,
            m.console_role,
            m.manager_role,
            m.manage_customers,
        )
        for m in members
        if m.company_id in companies
        and (not live or _live(companies[m.company_id], companies))
        and (m.console_role is not None or m.manager_role is not None)
    ]
    return tuple(sorted(seats, key=lambda c: (c.kind is not CompanyKind.PARTNER, c.name.lower())))


@dataclass(frozen=True)
class Memberships:
    """An account's live PBX seats and company memberships, read once per request (or login)."""

    seats: tuple[Seat, ...]
    companies: tuple[CompanySeat, ...]

    def __bool__(self) -> bool:
        return bool(self.seats or self.companies)


def memberships(session: Session, account: Account, *, live: bool = True) -> Memberships:
    """``live``: only those whose company, and its partner, are active."""
    return Memberships(_pbx_seats(session, account, live=live), _company_seats(session, account, live=live))


def principal_of(
    session: Session, row: WebSession, account: Account, known: Memberships | None = None
) -> Principal | None:
    """The session's principal (``known``: the account's live memberships, when already read)."""
    found = known if known is not None else memberships(session, account)
    if not found:
        return None
    seats, companies = found.seats, found.companies
    chosen = row.company_id if any(c.company_id == row.company_id for c in companies) else None
    view = row.view_company_id if chosen is not None else None
    if view is not None and view != chosen and not customer_of(session, view, chosen):
        view = chosen  # the customer went (deleted, suspended): back to the partner
    return Principal(
        account_id=account.id,
        email=account.email,
        full_name=account.full_name,
        csrf_token=row.csrf_token,
        token_hash=row.token_hash,
        stage=Stage(row.stage),
        seats=seats,
        companies=companies,
        company_id=chosen,
        view_company_id=view,
        seat=seats[0] if seats else _NO_SEAT,
    )


def customer_of(session: Session, customer_id: int | None, partner_id: int | None) -> bool:
    """Whether ``customer_id`` is an active customer of partner ``partner_id`` (a view it may switch to)."""
    customer = session.get(Company, customer_id) if customer_id is not None else None
    return customer is not None and customer.parent_id == partner_id and customer.status is CompanyStatus.ACTIVE
