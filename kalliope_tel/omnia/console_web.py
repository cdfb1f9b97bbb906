"""The Admin Console's API (``/api/v1/console``) and the session's company
and view. Thin: authorise (``rights``), one transaction, a service of
``console``, JSON. Every change is in the log with the caller's address."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel.accounts.models import AccountStatus, ConsoleRole, ManagerRole
from kalliope_tel.container import Container
from kalliope_tel.db.base import utcnow
from kalliope_tel.files import decode_text, read_bounded
from kalliope_tel.omnia import console, users_csv
from kalliope_tel.omnia.dashboard import dashboard
from kalliope_tel.omnia.generated import forget_generated
from kalliope_tel.omnia.rights import ConsoleView, Need, NotAllowed, check
from kalliope_tel.oplog import services as oplog
from kalliope_tel.oplog.services import Actor
from kalliope_tel.spreadsheets import csv_table
from kalliope_tel.tables import ImportRefused
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.exceptions import CompanyNotFound
from kalliope_tel.tenancy.models import Company, CompanyStatus
from kalliope_tel.web import access, deps
from kalliope_tel.web.i18n import pick_language
from kalliope_tel.web.principal import Principal, customer_of
from kalliope_tel.web.resets_web import site_of

API = "/api/v1/console"


class CustomerIn(BaseModel):
    legal_name: str = Field(max_length=200)
    customer_code: str = Field("", max_length=40)
    vat_number: str = Field("", max_length=20)
    fiscal_code: str = Field("", max_length=20)
    manager_enabled: bool = True


class CustomerPatch(BaseModel):
    legal_name: str | None = Field(None, max_length=200)
    customer_code: str | None = Field(None, max_length=40)
    vat_number: str | None = Field(None, max_length=20)
    fiscal_code: str | None = Field(None, max_length=20)
    manager_enabled: bool | None = None


class CompanyPatch(BaseModel):
    legal_name: str | None = Field(None, max_length=200)
    vat_number: str | None = Field(None, max_length=20)
    fiscal_code: str | None = Field(None, max_length=20)
    pbx_users_second_factor: bool | None = None


class UserIn(BaseModel):
    email: str = Field(max_length=254)
    first_name: str = Field("", max_length=80)
    last_name: str = Field("", max_length=80)
    department: str = Field("", max_length=80)
    console_role: ConsoleRole | None = None
    manager_role: ManagerRole | None = None
    manage_customers: bool = False


class UserPatch(BaseModel):
    email: str | None = Field(None, max_length=254)
    first_name: str | None = Field(None, max_length=80)
    last_name: str | None = Field(None, max_length=80)
    department: str | None = Field(None, max_length=80)
    console_role: ConsoleRole | None = None
    manager_role: ManagerRole | None = None
    manage_customers: bool | None = None
    status: AccountStatus | None = None


class Choice(BaseModel):
    company: int | None = None


class Console:
    """An authorised Console request: who, in which view, from where."""

    def __init__(self, principal: Principal, view: ConsoleView, request: Request) -> None:
        self.principal, self.view, self.request = principal, view, request

    @property
    def actor(self) -> Actor:
        return deps.web_actor(self.request, self.principal.email)

    def company(self, session: Session) -> Company:
        """The company in view."""
        return companies.get_company(session, self.view.view_company_id)

    def customer(self, session: Session, customer_id: int) -> Company:
        """One of the partner's customers (another's gets the same answer as none)."""
        found = session.get(Company, customer_id)
        if found is None or found.parent_id != self.view.membership.company_id:
            raise CompanyNotFound("company.not_found", id=customer_id)
        return found


def allow(need: Need, kind: type[Console] | None = None) -> Any:
    """A dependency: the caller's principal checked for ``need`` (``rights``),
    as a ``kind`` of request (the Console's, or the Manager's)."""

    def dependency(request: Request) -> Console:
        principal = deps.logged_in(request)
        try:
            view = check(principal, need)
        except NotAllowed as exc:
            raise deps.Refusal(exc.status, exc.code or "web.not_allowed") from None
        return (kind or Console)(principal, view, request)

    return Depends(dependency)


Reader = Annotated[Console, allow(Need.READ)]
Changer = Annotated[Console, allow(Need.CHANGE)]
CustomerReader = Annotated[Console, allow(Need.CUSTOMERS)]
CustomerChanger = Annotated[Console, allow(Need.CUSTOMERS_CHANGE)]


def _csv(name: str, text: str) -> Response:
    return Response(
        text, media_type="text/csv; charset=utf-8", headers={"content-disposition": f'attachment; filename="{name}"'}
    )


CUSTOMER_COLUMNS = ["legal_name", "customer_code", "vat_number", "fiscal_code", "status", "manager_enabled", "pbxs",
                    "created_at"]  # fmt: skip


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["console"])

    # ---------------------------------------------------------- session
    @r.post("/api/v1/session/company", tags=["core"])
    def choose_company(request: Request, body: Choice) -> dict[str, Any]:
        """Choose the company to work in (one of the caller's); the view becomes that company."""
        principal = deps.logged_in(request)
        if body.company is None or all(c.company_id != body.company for c in principal.companies):
            raise deps.Refusal(403, "web.not_allowed")
        with deps.unit_of_work(request) as session:
            row = access.session_row(session, principal)
            row.company_id = row.view_company_id = body.company
        return {"company": body.company, "view": body.company}

    @r.post("/api/v1/session/view", tags=["core"])
    def switch_view(request: Request, body: Choice) -> dict[str, Any]:
        """A partner's member who may manage customers works in a customer's view (null: back to the partner)."""
        principal = deps.logged_in(request)
        seat = principal.company()
        if seat is None or not seat.manage_customers:
            raise deps.Refusal(403, "web.not_allowed")
        with deps.unit_of_work(request) as session:
            if body.company is not None and not customer_of(session, body.company, seat.company_id):
                raise deps.Refusal(403, "web.not_allowed")
            row = access.session_row(session, principal)
            row.view_company_id = body.company if body.company is not None else seat.company_id
            return {"company": seat.company_id, "view": row.view_company_id}

    # ---------------------------------------------------------- the company in view
    @r.get(API + "/company")
    def read_company(c: Reader) -> dict[str, Any]:
        """The company in view: legal name, customer code, VAT number, fiscal code, services."""
        with deps.unit_of_work(c.request) as session:
            return console.company_fields(session, c.company(session))

    @r.patch(API + "/company")
    def update_company(c: Changer, body: CompanyPatch) -> dict[str, Any]:
        """Change the company's data, and whether its PBX users need a second factor."""
        with deps.unit_of_work(c.request) as session:
            company = console.update_own_company(
                session, c.actor, c.company(session), legal_name=body.legal_name, vat=body.vat_number,
                fiscal=body.fiscal_code, pbx_users_second_factor=body.pbx_users_second_factor,
            )  # fmt: skip
            return console.company_fields(session, company)

    # ---------------------------------------------------------- customers
    @r.get(API + "/customers")
    def list_customers(c: CustomerReader) -> list[dict[str, Any]]:
        """The partner's customers."""
        with deps.unit_of_work(c.request) as session:
            partner = c.company(session)
            return [console.company_fields(session, x) for x in companies.customers_of(session, partner)]

    @r.get(API + "/customers.csv")
    def export_customers(c: CustomerReader) -> Response:
        """The customers as CSV."""
        return _csv("customers.csv", csv_table(CUSTOMER_COLUMNS, list_customers(c)))

    @r.post(API + "/customers", status_code=201)
    def create_customer(c: CustomerChanger, body: CustomerIn) -> dict[str, Any]:
        """A new customer of the partner (VAT number and fiscal code checked)."""
        with deps.unit_of_work(c.request) as session:
            customer = console.create_customer(
                session, c.actor, c.company(session), legal_name=body.legal_name, code=body.customer_code,
                vat=body.vat_number, fiscal=body.fiscal_code, manager_enabled=body.manager_enabled,
            )  # fmt: skip
            return console.company_fields(session, customer)

    @r.patch(API + "/customers/{customer_id}")
    def update_customer(c: CustomerChanger, customer_id: int, body: CustomerPatch) -> dict[str, Any]:
        """Change a customer's data or services."""
        with deps.unit_of_work(c.request) as session:
            customer = console.update_customer(
                session, c.actor, c.company(session), c.customer(session, customer_id), legal_name=body.legal_name,
                code=body.customer_code, vat=body.vat_number, fiscal=body.fiscal_code,
                manager_enabled=body.manager_enabled,
            )  # fmt: skip
            return console.company_fields(session, customer)

    @r.post(API + "/customers/{customer_id}/suspend")
    def suspend_customer(c: CustomerChanger, customer_id: int) -> dict[str, Any]:
        """Suspend a customer: its users cannot log in, its PBXs stop serving."""
        return _status(c, customer_id, CompanyStatus.SUSPENDED)

    @r.post(API + "/customers/{customer_id}/resume")
    def resume_customer(c: CustomerChanger, customer_id: int) -> dict[str, Any]:
        """Resume a suspended customer."""
        return _status(c, customer_id, CompanyStatus.ACTIVE)

    def _status(c: Console, customer_id: int, status: CompanyStatus) -> dict[str, Any]:
        with deps.unit_of_work(c.request) as session:
            customer = c.customer(session, customer_id)
            console.set_customer_status(session, c.actor, c.company(session), customer, status)
            return console.company_fields(session, customer)

    @r.delete(API + "/customers/{customer_id}", status_code=204)
    def delete_customer(c: CustomerChanger, customer_id: int) -> Response:
        """Delete a customer with its PBXs, every row of theirs and their generated Asterisk files."""
        with deps.unit_of_work(c.request) as session:
            customer = c.customer(session, customer_id)
            targets = forget_generated(deps.container_of(c.request).settings, session, customer.id)
            console.delete_customer(session, c.actor, c.company(session), customer)
        targets()
        return Response(status_code=204)

    # ---------------------------------------------------------- users
    @r.get(API + "/users")
    def list_users(c: Reader) -> list[dict[str, Any]]:
        """The users of the company in view."""
        with deps.unit_of_work(c.request) as session:
            return [console.member_fields(a, m) for a, m in console.accounts_of(session, c.view.view_company_id)]

    @r.get(API + "/users.csv")
    def export_users(c: Reader) -> Response:
        """The users as CSV (the columns the import reads)."""
        with deps.unit_of_work(c.request) as session:
            return _csv("users.csv", users_csv.export(session, c.company(session)))

    @r.post(API + "/users.csv")
    def import_users(c: Changer, file: UploadFile, dry_run: bool = False) -> dict[str, Any]:
        """Import users from CSV (header names): every row is checked first and nothing is written when any
        is wrong (each error by line and column); ``dry_run`` reports without writing."""
        data = read_bounded(file.file, users_csv.MAX_BYTES)
        if data is None:
            raise ImportRefused("csv.too_large", limit=users_csv.MAX_BYTES >> 10)
        with deps.unit_of_work(c.request) as session:
            report = users_csv.import_users(
                session, c.actor, c.company(session), decode_text(data), dry_run=dry_run, site=site_of(c.request),
                lang=pick_language(c.request),
            )  # fmt: skip
        return report.as_dict()

    @r.post(API + "/users", status_code=201)
    def invite_user(c: Changer, body: UserIn) -> dict[str, Any]:
        """A new user: the invitation mail (a link valid 72 hours) is on its way."""
        with deps.unit_of_work(c.request) as session:
            company = c.company(session)
            account = console.invite(
                session, c.actor, company, email=body.email, first_name=body.first_name, last_name=body.last_name,
                department=body.department, console=body.console_role, manager=body.manager_role,
                manage_customers=body.manage_customers, site=site_of(c.request), lang=pick_language(c.request),
            )  # fmt: skip
            return console.member_fields(*console.find_member(session, company, account.id))

    @r.patch(API + "/users/{account_id}")
    def update_user(c: Changer, account_id: int, body: UserPatch) -> dict[str, Any]:
        """Change a user's name, address, department, roles or status."""
        fields = body.model_dump(exclude_unset=True)
        with deps.unit_of_work(c.request) as session:
            company = c.company(session)
            account, member = console.find_member(session, company, account_id)
            _not_self(c, account_id, fields)
            status = fields.pop("status", None)
            renamed = {"console_role": "console", "manager_role": "manager"}
            console.update_member(session, c.actor, company, account, member,
                                  **{renamed.get(k, k): v for k, v in fields.items()})  # fmt: skip
            if status is not None:
                console.set_account_status(session, c.actor, company, account, AccountStatus(status))
            return console.member_fields(account, member)

    @r.delete(API + "/users/{account_id}", status_code=204)
    def delete_user(c: Changer, account_id: int) -> Response:
        """Remove a user from the company (the account goes when nothing else is left)."""
        _not_self(c, account_id, {"delete": True})
        with deps.unit_of_work(c.request) as session:
            company = c.company(session)
            account, _ = console.find_member(session, company, account_id)
            console.remove_member(session, c.actor, company, account)
        return Response(status_code=204)

    @r.post(API + "/users/{account_id}/invite")
    def resend_invite(c: Changer, account_id: int) -> dict[str, Any]:
        """Send the invitation again (a new link; the earlier one stops working)."""
        with deps.unit_of_work(c.request) as session:
            company = c.company(session)
            account, member = console.find_member(session, company, account_id)
            console.resend_invite(session, c.actor, company, account, site=site_of(c.request),
                                  lang=pick_language(c.request))  # fmt: skip
            return console.member_fields(account, member)

    @r.post(API + "/users/{account_id}/second-factor/reset")
    def reset_second_factor(c: Changer, account_id: int) -> dict[str, Any]:
        """Forget a user's second factor: they enrol again at their next login (logged)."""
        _not_self(c, account_id, {"second_factor": True})
        with deps.unit_of_work(c.request) as session:
            company = c.company(session)
            account, member = console.find_member(session, company, account_id)
            console.reset_second_factor(session, c.actor, company, account)
            return console.member_fields(account, member)

    # ---------------------------------------------------------- dashboard
    @r.get(API + "/dashboard")
    def read_dashboard(c: Reader, months: int = Query(12, ge=1, le=36)) -> dict[str, Any]:
        """Customers acquired per month, and totals of customers, PBXs and licences against the previous month."""
        with deps.unit_of_work(c.request) as session:
            return dashboard(session, c.company(session), utcnow().date(), months)

    # ---------------------------------------------------------- log
    @r.get(API + "/log")
    def read_log(c: Reader, before: int | None = None) -> list[dict[str, Any]]:
        """The log of the company in view, newest first (``before``: the next page)."""
        with deps.unit_of_work(c.request) as session:
            return [oplog.as_dict(e) for e in oplog.entries(session, {c.view.view_company_id}, before_id=before)]

    return r


def _not_self(c: Console, account_id: int, fields: dict[str, Any]) -> None:
    """An administrator does not demote, suspend, delete or reset themselves (another administrator can)."""
    if account_id == c.principal.account_id and ({"console_role", "status", "delete", "second_factor"} & fields.keys()):
        raise deps.Refusal(409, "user.keep_self")
