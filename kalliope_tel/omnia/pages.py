"""The Console's page: the company chooser after login, and, in the view,
the dashboard, customers, users and the log (``static/console.js`` builds
them from /api/v1/console). The view menu at the top right lists the
caller's companies and, for a partner's member who may manage customers,
its customers. The Manager's page (``/manager``, ``static/manager.js``):
the PBXs of the company in view, their extensions, numbers, SIP trunks and
groups (``static/manager_trunks.js``) and the Manager log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from kalliope_tel.accounts.models import ConsoleRole, ManagerRole
from kalliope_tel.container import Container
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.models import CompanyKind, CompanyStatus
from kalliope_tel.web import access, deps
from kalliope_tel.web.app import page, refused_page

PATH = "/console"


def view_menu(request: Request, principal: access.Principal) -> list[dict[str, Any]]:
    """The top-right menu's entries: {company, view, label, current}."""
    seat = principal.company()
    entries = [
        {"company": c.company_id, "view": c.company_id, "label": c.name,
         "current": c.company_id == principal.view_company_id}
        for c in principal.companies
    ]  # fmt: skip
    if seat is not None and seat.kind is CompanyKind.PARTNER and seat.manage_customers:
        with deps.unit_of_work(request, writes=False) as session:
            partner = companies.get_company(session, seat.company_id)
            entries += [
                {"company": seat.company_id, "view": c.id, "label": c.legal_name,
                 "current": c.id == principal.view_company_id}
                for c in companies.customers_of(session, partner)
                if c.status is CompanyStatus.ACTIVE
            ]  # fmt: skip
    return entries


def router(_container: Container) -> APIRouter:
    r = APIRouter()

    @r.get(PATH, include_in_schema=False)
    def console_page(request: Request) -> Response:
        principal = deps.current_principal(request)
        if principal is None or principal.stage is not access.Stage.IN:
            return RedirectResponse("/login", status_code=303)
        if not principal.companies:
            return refused_page(request, principal, "web.page_forbidden")
        seat = principal.company()
        config: dict[str, Any] = {"chosen": seat is not None, "account": principal.account_id}
        if seat is not None:
            config |= {
                "company": seat.company_id,
                "view": principal.view_company_id,
                "customer_view": principal.view_company_id != seat.company_id,
                "partner": seat.kind is CompanyKind.PARTNER,
                "customers": seat.kind is CompanyKind.PARTNER and seat.manage_customers
                and principal.view_company_id == seat.company_id,
                "admin": seat.console is ConsoleRole.ADMIN,
                "console": seat.console is not None,
            }  # fmt: skip
        return page(request, "console.html", principal, config=config, views=view_menu(request, principal),
                    companies=principal.companies)  # fmt: skip

    @r.get("/manager", include_in_schema=False)
    def manager_page(request: Request) -> Response:
        """Omnia Manager: the PBXs of the company in view, their extensions, numbers, SIP trunks and
        groups (``static/manager_trunks.js``) and the Manager log."""
        principal = deps.current_principal(request)
        if principal is None or principal.stage is not access.Stage.IN:
            return RedirectResponse("/login", status_code=303)
        seat = principal.company()
        if seat is None:
            return RedirectResponse(PATH, status_code=303)  # the company chooser first
        if seat.manager is None:
            return refused_page(request, principal, "web.page_forbidden")
        config = {"chosen": True, "company": seat.company_id, "view": principal.view_company_id,
                  "admin": seat.manager is ManagerRole.ADMIN, "account": principal.account_id,
                  "partner": seat.kind is CompanyKind.PARTNER}  # fmt: skip
        return page(request, "manager.html", principal, config=config, views=view_menu(request, principal),
                    manager_page=True, customer_view=principal.view_company_id != seat.company_id)  # fmt: skip

    return r
