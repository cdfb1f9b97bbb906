"""Who may do what in the Admin Console, decided from the session's
principal alone (no HTTP): the chosen company, the view, the membership's
Console role and its "may manage customers" flag.

- Everything acts in the view: the chosen company, or one of a partner's
  customers the partner switched to.
- Reading needs a Console role (administrator or read-only) in the chosen
  company; changing needs the administrator role.
- Customers are a partner's, in the partner's own view, for members who
  may manage customers; a customer's members never see them.
- The Manager (PBXs, extensions) needs a Manager role instead: read-only
  to read, administrator to change, in the view (a partner's member works
  on a customer's PBXs in the customer's view).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kalliope_tel.accounts.models import ConsoleRole, ManagerRole
from kalliope_tel.errors import KalliopeError
from kalliope_tel.tenancy.models import CompanyKind
from kalliope_tel.web.principal import CompanySeat, Principal


class Need(enum.Enum):
    READ = "read"
    CHANGE = "change"
    CUSTOMERS = "customers"  # read the partner's customers
    CUSTOMERS_CHANGE = "customers_change"
    MANAGER = "manager"  # read the PBXs and extensions of the company in view
    MANAGER_CHANGE = "manager_change"


class NotAllowed(KalliopeError):
    """With the HTTP status the web answers (a choice still owed is 409)."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status


@dataclass(frozen=True)
class ConsoleView:
    membership: CompanySeat  # in the chosen company
    view_company_id: int

    @property
    def in_customer_view(self) -> bool:
        return self.view_company_id != self.membership.company_id


def check(principal: Principal, need: Need) -> ConsoleView:
    seat = principal.company()
    if seat is None:
        if principal.companies:
            raise NotAllowed(409, "console.choose_company")
        raise NotAllowed(403, "web.not_allowed")
    if need in (Need.MANAGER, Need.MANAGER_CHANGE):
        return _manager(principal, seat, need)
    if seat.console is None:
        raise NotAllowed(403, "web.not_allowed")
    view = ConsoleView(seat, principal.view_company_id or seat.company_id)
    changing = need in (Need.CHANGE, Need.CUSTOMERS_CHANGE)
    if changing and seat.console is not ConsoleRole.ADMIN:
        raise NotAllowed(403, "web.not_allowed")
    if need in (Need.CUSTOMERS, Need.CUSTOMERS_CHANGE) and (
        seat.kind is not CompanyKind.PARTNER or not seat.manage_customers or view.in_customer_view
    ):
        raise NotAllowed(403, "web.not_allowed")
    return view


def _manager(principal: Principal, seat: CompanySeat, need: Need) -> ConsoleView:
    """The Manager: a Manager role in the chosen company (administrator to
    change); a partner's member works on a customer's PBXs in its view."""
    if seat.manager is None or (need is Need.MANAGER_CHANGE and seat.manager is not ManagerRole.ADMIN):
        raise NotAllowed(403, "web.not_allowed")
    return ConsoleView(seat, principal.view_company_id or seat.company_id)
