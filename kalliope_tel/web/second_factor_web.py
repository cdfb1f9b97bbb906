"""The second factor in the browser: the code after the password, and the
enrolment (QR code, first code, recovery codes) for accounts that need one
and have none. Both work on a session whose stage is not yet "in"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel.accounts import second_factor
from kalliope_tel.accounts.models import Account
from kalliope_tel.accounts.services import AccountError
from kalliope_tel.container import Container
from kalliope_tel.db.engine import transaction
from kalliope_tel.web import access, deps
from kalliope_tel.web.access import Principal, Stage
from kalliope_tel.web.app import page

PAGE = "/login/second-factor"


class Code(BaseModel):
    code: str = Field(min_length=1, max_length=20)


def _account(session: Session, principal: Principal) -> Account:
    account = session.get(Account, principal.account_id)
    if account is None:
        raise deps.Refusal(401, "web.log_in_first")
    return account


def _at_stage(principal: Principal, *stages: Stage) -> None:
    if principal.stage not in stages:
        raise deps.Refusal(409, "web.stage", stage=str(principal.stage))


def _counted(request: Request, principal: Principal) -> None:
    """Count the try in a transaction of its own, so a wrong code counts."""
    with transaction(deps.container_of(request).sessions) as session:
        second_factor.count_try(session, principal.account_id)


def router(_container: Container) -> APIRouter:
    r = APIRouter()

    @r.get(PAGE, include_in_schema=False)
    def second_factor_page(request: Request) -> Response:
        principal = deps.current_principal(request)
        if principal is None:
            return RedirectResponse("/login", status_code=303)
        if principal.stage is Stage.IN:
            return RedirectResponse("/", status_code=303)
        return page(request, "second_factor.html", principal, config={"stage": str(principal.stage)})

    @r.post("/api/v1/session/second-factor", tags=["core"])
    def give_code(request: Request, principal: deps.HalfLoggedIn, body: Code) -> dict[str, Any]:
        """The code from the authenticator app (accepted once), or a recovery code (used up)."""
        _at_stage(principal, Stage.SECOND_FACTOR)
        _counted(request, principal)
        ip = deps.client_ip(request)
        try:
            with deps.unit_of_work(request, writes=True) as session:
                account = _account(session, principal)
                kind = second_factor.check(session, account, body.code)
                access.session_row(session, principal).stage = Stage.IN
                access.audit(session, "second factor", True, ip=ip, login=account.email.lower(),
                             account_id=account.id, detail=kind)  # fmt: skip
                left = second_factor.recovery_left(session, account)
        except AccountError:
            with deps.unit_of_work(request, writes=True) as session:
                access.audit(session, "second factor", False, ip=ip, login=principal.email.lower(),
                             account_id=principal.account_id, detail="wrong code")  # fmt: skip
            raise
        return {"stage": "in", "recovery_left": left}

    @r.post("/api/v1/session/enrolment", tags=["core"])
    def start_enrolment(request: Request, principal: deps.HalfLoggedIn) -> dict[str, str]:
        """A new TOTP secret for this account, with its QR code (nothing changes until it is confirmed)."""
        _at_stage(principal, Stage.ENROL)
        with deps.unit_of_work(request, writes=True) as session:
            enrolment = second_factor.start_enrolment(session, _account(session, principal))
        return {"secret": enrolment.secret, "uri": enrolment.uri, "qr": enrolment.qr_svg}

    @r.post("/api/v1/session/enrolment/confirm", tags=["core"])
    def confirm_enrolment(request: Request, principal: deps.HalfLoggedIn, body: Code) -> dict[str, Any]:
        """The app's first code makes the secret the account's; the recovery codes come back once."""
        _at_stage(principal, Stage.ENROL)
        _counted(request, principal)
        with deps.unit_of_work(request, writes=True) as session:
            account = _account(session, principal)
            codes = second_factor.confirm_enrolment(session, account, body.code)
            access.session_row(session, principal).stage = Stage.IN
            access.audit(session, "second factor enrolled", True, ip=deps.client_ip(request),
                         login=account.email.lower(), account_id=account.id)  # fmt: skip
        return {"stage": "in", "recovery_codes": codes}

    return r
