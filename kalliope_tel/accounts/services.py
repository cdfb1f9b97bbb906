"""Accounts and their company memberships: create, find, name, password,
status. Callers own the transaction.

Which companies an account reaches decides who may touch it: an
administrator may change an account's address or name only when every
membership it has is within their reach, so one tenant's administrator
cannot take over a person another tenant also serves.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.accounts import passwords
from kalliope_tel.accounts.models import Account, AccountStatus, CompanyMember, ConsoleRole, ManagerRole
from kalliope_tel.errors import KalliopeError
from kalliope_tel.mail.addresses import check_address
from kalliope_tel.tenancy.models import Company, Pbx
from kalliope_tel.users.models import User


class AccountError(KalliopeError):
    pass


class AccountNotFound(AccountError):
    pass


def check_email(value: str) -> str:
    try:
        return check_address(value)
    except ValueError:
        raise AccountError("user.bad_email", email=repr(value[:254]), field="email") from None


def check_name_part(value: str, field: str) -> str:
    value = value.strip()
    if len(value) > 80 or any(ord(c) < 32 for c in value):
        raise AccountError("account.bad_name", limit=80, field=field)
    return value


def split_full_name(full_name: str) -> tuple[str, str]:
    """A full name as first name and last name (split at the first space)."""
    if len(full_name) > 161 or any(ord(c) < 32 for c in full_name):
        raise AccountError("user.bad_full_name", limit=160, field="full_name")
    first, _, last = full_name.strip().partition(" ")
    return check_name_part(first, "full_name"), check_name_part(last, "full_name")


def find_account(session: Session, email: str) -> Account | None:
    """The account with exactly this address (case included), or None."""
    return session.scalars(select(Account).where(Account.email == email)).first()


def create_account(
    session: Session,
    email: str,
    first_name: str = "",
    last_name: str = "",
    status: AccountStatus = AccountStatus.ACTIVE,
) -> Account:
    email = check_email(email)
    if find_account(session, email) is not None:
        raise AccountError("user.email_taken", email=email, field="email")
    account = Account(
        email=email,
        first_name=check_name_part(first_name, "first_name"),
        last_name=check_name_part(last_name, "last_name"),
        status=status,
    )
    session.add(account)
    session.flush()
    return account


def companies_of(session: Session, account_id: int) -> set[int]:
    """Every company the account reaches: its company memberships and the
    companies of the PBXs it is a user of."""
    direct = session.scalars(select(CompanyMember.company_id).where(CompanyMember.account_id == account_id))
    through_pbx = session.scalars(
        select(Pbx.company_id).join(User, User.pbx_id == Pbx.id).where(User.account_id == account_id)
    )
    return set(direct) | set(through_pbx)


def within(session: Session, account_id: int, companies: Iterable[int]) -> bool:
    """Whether every membership of the account is in ``companies``."""
    return companies_of(session, account_id) <= set(companies)


def change_identity(
    session: Session,
    account: Account,
    reach: Iterable[int],
    *,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> Account:
    """Change the account's address or name, refused when it is also
    someone else's user (outside ``reach``, the caller's companies)."""
    changes = (email is not None and email != account.email) or first_name is not None or last_name is not None
    if changes and not within(session, account.id, reach):
        raise AccountError("account.shared", field="email")
    if email is not None and email != account.email:
        email = check_email(email)
        taken = find_account(session, email)
        if taken is not None and taken.id != account.id:
            raise AccountError("user.email_taken", email=email, field="email")
        account.email = email
    if first_name is not None:
        account.first_name = check_name_part(first_name, "first_name")
    if last_name is not None:
        account.last_name = check_name_part(last_name, "last_name")
    session.flush()
    return account


def set_password(session: Session, account: Account, password: str) -> Account:
    """Set (or, with "", remove) the password; the account's sessions end.
    An invited account becomes active with its first password."""
    account.password_hash = passwords.new_hash(password, AccountError) if password else ""
    account.password_generation += 1
    if password and account.status is AccountStatus.INVITED:
        account.status = AccountStatus.ACTIVE
    session.flush()
    return account


def end_sessions(account: Account) -> None:
    """Sessions opened before this are refused from now on (a right taken
    away, a second factor reset, a suspension)."""
    account.password_generation += 1


def set_status(session: Session, account: Account, status: AccountStatus) -> Account:
    if status is not account.status:
        account.status = status
        if status is AccountStatus.SUSPENDED:
            end_sessions(account)
        session.flush()
    return account


def remove_if_unused(session: Session, account: Account) -> bool:
    """Delete the account when no membership is left (no orphan logins)."""
    if companies_of(session, account.id):
        return False
    session.delete(account)
    session.flush()
    return True


# ------------------------------------------------------------------ companies
def membership(session: Session, account_id: int, company_id: int) -> CompanyMember | None:
    return session.scalars(
        select(CompanyMember).where(CompanyMember.account_id == account_id, CompanyMember.company_id == company_id)
    ).first()


def join_company(
    session: Session,
    account: Account,
    company: Company,
    *,
    console: ConsoleRole | None = None,
    manager: ManagerRole | None = None,
    manage_customers: bool = False,
    department: str = "",
) -> CompanyMember:
    """Make the account a member of the company, or change its membership
    (a right taken away ends its sessions)."""
    department = department.strip()
    if len(department) > 80 or any(ord(c) < 32 for c in department):
        raise AccountError("account.bad_department", limit=80, field="department")
    if manage_customers and company.parent_id is not None:
        raise AccountError("account.customers_of_customer", field="manage_customers")
    row = membership(session, account.id, company.id)
    if row is None:
        row = CompanyMember(account_id=account.id, company_id=company.id)
        session.add(row)
    elif _weaker(row, console, manager, manage_customers):
        end_sessions(account)
    row.console_role, row.manager_role = console, manager
    row.manage_customers, row.department = manage_customers, department
    session.flush()
    return row


def _weaker(row: CompanyMember, console: ConsoleRole | None, manager: ManagerRole | None, customers: bool) -> bool:
    rank = {None: 0, "read_only": 1, "admin": 2}
    return (
        rank[console] < rank[row.console_role]
        or rank[manager] < rank[row.manager_role]
        or (row.manage_customers and not customers)
    )


def leave_company(session: Session, account: Account, company_id: int) -> None:
    row = membership(session, account.id, company_id)
    if row is None:
        raise AccountError("account.not_member", email=account.email)
    session.delete(row)
    end_sessions(account)
    session.flush()


def members(session: Session, company_id: int) -> list[tuple[Account, CompanyMember]]:
    rows = session.execute(
        select(Account, CompanyMember)
        .join(CompanyMember, CompanyMember.account_id == Account.id)
        .where(CompanyMember.company_id == company_id)
        .order_by(Account.last_name, Account.first_name, Account.email)
    )
    return [(a, m) for a, m in rows.all()]
