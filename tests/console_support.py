"""A partner with customers and Console members, and logins through the
second factor (TOTP codes made with pyotp from the enrolled secret)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp
from sqlalchemy.orm import Session

from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import ConsoleRole, ManagerRole
from kalliope_tel.tenancy import companies
from tests.web_node import RunningWeb
from tests.web_support import PASSWORD

PARTNER_ADMIN = "pa@partner.test"
READ_ONLY = "ro@partner.test"
NO_CUSTOMERS = "nm@partner.test"
ALFA_ADMIN = "ca@alfa.test"
BETA_ADMIN = "cb@beta.test"


def seed_console(session: Session) -> None:
    partner = companies.installation_partner(session)
    alfa = companies.create_customer(session, partner, "Alfa Srl", code="ALFA", vat="IT00743110157")
    beta = companies.create_customer(session, partner, "Beta Spa", code="BETA")
    people = [
        (PARTNER_ADMIN, partner, ConsoleRole.ADMIN, True),
        (READ_ONLY, partner, ConsoleRole.READ_ONLY, True),
        (NO_CUSTOMERS, partner, ConsoleRole.ADMIN, False),
        (ALFA_ADMIN, alfa, ConsoleRole.ADMIN, False),
        (BETA_ADMIN, beta, ConsoleRole.ADMIN, False),
    ]
    for email, company, role, customers in people:
        account = accounts.create_account(session, email, email.split("@")[0].upper(), "Test")
        accounts.set_password(session, account, PASSWORD)
        accounts.join_company(session, account, company, console=role, manager=ManagerRole.ADMIN,
                              manage_customers=customers)  # fmt: skip


@dataclass
class Factors:
    """What the test knows of each account's second factor."""

    secrets: dict[str, str] = field(default_factory=dict)
    recovery: dict[str, list[str]] = field(default_factory=dict)


def password_step(web: RunningWeb, email: str, password: str = PASSWORD) -> tuple[httpx.Client, dict[str, object]]:
    client = web.client()
    client.get("/login")
    response = client.post("/api/v1/session", json={"email": email, "password": password},
                           headers={"x-csrf-token": client.cookies["kt_login_csrf"]})  # fmt: skip
    assert response.status_code == 200, response.text
    return client, response.json()


def console_login(web: RunningWeb, email: str, factors: Factors) -> tuple[httpx.Client, str]:
    """Logged in all the way: enrolled on the first login, then a recovery code each time."""
    client, me = password_step(web, email)
    csrf = str(me["csrf_token"])
    headers = {"x-csrf-token": csrf}
    if me["stage"] == "enrol":
        secret = client.post("/api/v1/session/enrolment", headers=headers).json()["secret"]
        done = client.post("/api/v1/session/enrolment/confirm", json={"code": pyotp.TOTP(secret).now()},
                           headers=headers)  # fmt: skip
        assert done.status_code == 200, done.text
        factors.secrets[email], factors.recovery[email] = secret, list(done.json()["recovery_codes"])
    elif me["stage"] == "second_factor":
        code = factors.recovery[email].pop()
        given = client.post("/api/v1/session/second-factor", json={"code": code}, headers=headers)
        assert given.status_code == 200, given.text
    return client, csrf


def browser_login(page: Any, url: str, email: str, secret: str, password: str = PASSWORD) -> None:
    """Log in through the pages: password, then the second factor's code, to the company chooser."""
    page.goto(url + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/login/second-factor$"))
    page.fill("#code", pyotp.TOTP(secret).now())
    page.locator("#code-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/console$"))
