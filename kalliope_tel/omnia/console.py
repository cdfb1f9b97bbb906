"""Omnia's Admin Console as services: customers and users of a company,
each change written to the log of operations with before and after.

No HTTP here: the web, the API and the CLI call these with an ``Actor``.
Callers own the transaction and decide who may call (``omnia.rights``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.accounts import second_factor
from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import Account, AccountStatus, CompanyMember, ConsoleRole, ManagerRole
from kalliope_tel.oplog.services import Actor, changed, record
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.models import Company, CompanyStatus, Pbx
from kalliope_tel.users import resets
from kalliope_tel.users.models import LinkKind, User


def company_fields(session: Session, company: Company) -> dict[str, Any]:
    return {
        "id": company.id,
        "kind": company.kind.value,
        "partner": company.parent_id,
        "legal_name": company.legal_name,
        "customer_code": company.customer_code or "",
        "vat_number": company.vat_number,
        "fiscal_code": company.fiscal_code,
        "status": company.status.value,
        "manager_enabled": company.manager_enabled,
        "pbx_users_second_factor": company.pbx_users_second_factor,
        "pbxs": companies.pbx_count(session, company),
        "created_at": company.created_at.isoformat(timespec="seconds"),
    }


# ------------------------------------------------------------------ customers
def create_customer(session: Session, actor: Actor, partner: Company, **fields: Any) -> Company:
    customer = companies.create_customer(session, partner, **fields)
    record(session, actor, "log.customer_created", "customer", customer.legal_name, company_id=partner.id,
           after=company_fields(session, customer))  # fmt: skip
    return customer


def update_customer(session: Session, actor: Actor, partner: Company, customer: Company, **fields: Any) -> Company:
    """A customer's data, changed by its partner (in the partner's log)."""
    return _update(session, actor, customer, "log.customer_updated", "customer", partner.id, fields)


def update_own_company(session: Session, actor: Actor, company: Company, **fields: Any) -> Company:
    """The company in view's own data (the seed's "Azienda"), and whether its PBX users need a second factor."""
    return _update(session, actor, company, "log.company_updated", company.kind.value, company.id, fields)


def _update(
    session: Session, actor: Actor, company: Company, operation: str, kind: str, log_of: int, fields: dict[str, Any]
) -> Company:
    before = company_fields(session, company)
    companies.update_company(session, company, **fields)
    old, new = changed(before, company_fields(session, company))
    if new:
        record(session, actor, operation, kind, company.legal_name, company_id=log_of, before=old, after=new)
    return company


def set_customer_status(
    session: Session, actor: Actor, partner: Company, customer: Company, status: CompanyStatus
) -> Company:
    """Suspend or resume: the logins, PBXs and phones of the customer follow
    (``web.principal`` refuses its sessions; serve turns its PBXs off)."""
    before = customer.status.value
    companies.set_status(session, customer, status)
    if before != customer.status.value:
        operation = "log.customer_suspended" if status is CompanyStatus.SUSPENDED else "log.customer_resumed"
        record(session, actor, operation, "customer", customer.legal_name, company_id=partner.id,
               before={"status": before}, after={"status": customer.status.value})  # fmt: skip
    return customer


def delete_customer(session: Session, actor: Actor, partner: Company, customer: Company) -> list[str]:
    """The customer, its PBXs and every row of theirs, and the accounts
    that were only its own (its users and its PBXs' users); returns the
    PBX slugs whose generated files the caller removes."""
    label, before = customer.legal_name, company_fields(session, customer)
    users = select(User.account_id).join(Pbx, Pbx.id == User.pbx_id).where(Pbx.company_id == customer.id)
    candidates = {a.id for a, _ in accounts_of(session, customer.id)} | set(session.scalars(users))
    own = [i for i in candidates if accounts.companies_of(session, i) <= {customer.id}]
    slugs = companies.remove_customer(session, customer)
    for account_id in own:
        account = session.get(Account, account_id)
        if account is not None:
            session.delete(account)
    session.flush()
    record(session, actor, "log.customer_deleted", "customer", label, company_id=partner.id, before=before)
    return slugs


# ------------------------------------------------------------------ users
def accounts_of(session: Session, company_id: int) -> list[tuple[Account, CompanyMember]]:
    return accounts.members(session, company_id)


def member_fields(account: Account, member: CompanyMember) -> dict[str, Any]:
    return {
        "id": account.id,
        "email": account.email,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "department": member.department,
        "console_role": member.console_role.value if member.console_role else "",
        "manager_role": member.manager_role.value if member.manager_role else "",
        "manage_customers": member.manage_customers,
        "status": account.status.value,
        "second_factor": bool(account.totp_secret),
        "created_at": account.created_at.isoformat(timespec="seconds"),
    }


def invite(
    session: Session,
    actor: Actor,
    company: Company,
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    department: str = "",
    console: ConsoleRole | None = None,
    manager: ManagerRole | None = None,
    manage_customers: bool = False,
    site: str,
    lang: str,
) -> Account:
    """A new user of the company: an invited account and an invitation
    mail owed (a link valid 72 hours to choose a password). An address that
    is already an account within the company's reach joins it instead."""
    account = accounts.find_account(session, email.strip())
    reach = {company.id} | ({company.parent_id} if company.parent_id else set())
    if account is None:
        account = accounts.create_account(session, email.strip(), first_name, last_name, AccountStatus.INVITED)
    elif not accounts.within(session, account.id, reach) or accounts.membership(session, account.id, company.id):
        raise accounts.AccountError("user.email_taken", email=email.strip(), field="email")
    member = accounts.join_company(
        session, account, company, console=console, manager=manager, manage_customers=manage_customers,
        department=department,
    )  # fmt: skip
    if account.status is AccountStatus.INVITED:
        resets.request_link(session, account, LinkKind.INVITE, site, lang)
    record(session, actor, "log.user_invited", "user", account.email, company_id=company.id,
           after=member_fields(account, member))  # fmt: skip
    return account


def resend_invite(session: Session, actor: Actor, company: Company, account: Account, *, site: str, lang: str) -> None:
    if account.status is not AccountStatus.INVITED:
        raise accounts.AccountError("account.not_invited", email=account.email)
    resets.request_link(session, account, LinkKind.INVITE, site, lang)
    record(session, actor, "log.invite_resent", "user", account.email, company_id=company.id)


def update_member(
    session: Session, actor: Actor, company: Company, account: Account, member: CompanyMember, **fields: Any
) -> None:
    before = member_fields(account, member)
    reach = {company.id}
    accounts.change_identity(
        session, account, reach, email=fields.get("email"), first_name=fields.get("first_name"),
        last_name=fields.get("last_name"),
    )  # fmt: skip
    accounts.join_company(
        session, account, company,
        console=fields.get("console", member.console_role), manager=fields.get("manager", member.manager_role),
        manage_customers=fields.get("manage_customers", member.manage_customers),
        department=fields.get("department", member.department),
    )  # fmt: skip
    old, new = changed(before, member_fields(account, member))
    if new:
        record(session, actor, "log.user_updated", "user", account.email, company_id=company.id, before=old, after=new)


def set_account_status(
    session: Session, actor: Actor, company: Company, account: Account, status: AccountStatus
) -> None:
    if not accounts.within(session, account.id, {company.id}):
        raise accounts.AccountError("account.shared", field="status")
    before = account.status.value
    accounts.set_status(session, account, status)
    if before != account.status.value:
        record(session, actor, "log.user_status", "user", account.email, company_id=company.id,
               before={"status": before}, after={"status": account.status.value})  # fmt: skip


def remove_member(session: Session, actor: Actor, company: Company, account: Account) -> None:
    """The account leaves the company; an account with nothing left goes."""
    member = accounts.membership(session, account.id, company.id)
    before = member_fields(account, member) if member else None
    email = account.email
    accounts.leave_company(session, account, company.id)
    accounts.remove_if_unused(session, account)
    record(session, actor, "log.user_deleted", "user", email, company_id=company.id, before=before)


def reset_second_factor(session: Session, actor: Actor, company: Company, account: Account) -> None:
    had = bool(account.totp_secret)
    second_factor.reset(session, account)
    record(session, actor, "log.second_factor_reset", "user", account.email, company_id=company.id,
           before={"second_factor": had}, after={"second_factor": False})  # fmt: skip


def find_member(session: Session, company: Company, account_id: int) -> tuple[Account, CompanyMember]:
    """The company's user ``account_id``, or refused as unknown (another
    company's user gets the same answer)."""
    row = session.execute(
        select(Account, CompanyMember)
        .join(CompanyMember, CompanyMember.account_id == Account.id)
        .where(CompanyMember.company_id == company.id, Account.id == account_id)
    ).first()
    if row is None:
        raise accounts.AccountNotFound("account.not_found", id=account_id)
    return row[0], row[1]
