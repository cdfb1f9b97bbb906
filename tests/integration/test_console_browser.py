"""The Admin Console in Chromium, in Italian, on both stores: a partner's
administrator enrols a second factor and logs in with password and TOTP,
chooses the partner among their companies, creates a customer (an invalid
VAT number refused under its field, with the reason), switches to the
customer's view from the top-right menu and invites its administrator;
the invitation comes through a real SMTP server, the invited person sets
a password from the link, enrols a second factor and logs in; the log of
each view shows every step with the actor and the address."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from sqlalchemy.orm import Session

from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import ConsoleRole, ManagerRole
from kalliope_tel.tenancy import companies
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.fax_service_support import MailSink
from tests.owed_mail import send_owed_links
from tests.web_node import RunningWeb, seeded_web
from tests.web_support import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.both_stores]
PARTNER_ADMIN = "paola@partner.test"
NEW_ADMIN = "gino@gamma.test"
NEW_PASSWORD = "gamma's own password"


def _seed(session: Session) -> None:
    partner = companies.installation_partner(session)
    partner.legal_name = "Provider Uno"
    alfa = companies.create_customer(session, partner, "Alfa Srl")
    paola = accounts.create_account(session, PARTNER_ADMIN, "Paola", "Partner")
    accounts.set_password(session, paola, PASSWORD)
    accounts.join_company(session, paola, partner, console=ConsoleRole.ADMIN, manager=ManagerRole.ADMIN,
                          manage_customers=True)  # fmt: skip
    accounts.join_company(session, paola, alfa, console=ConsoleRole.READ_ONLY)  # two companies: she chooses


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory, mail: tuple[MailSink, int]) -> Iterator[RunningWeb]:
    folder = tmp_path_factory.mktemp("console-browser")
    with seeded_web(db_backend, folder, seed=_seed, smtp_url=f"smtp://127.0.0.1:{mail[1]}",
                    mail_from="console@partner.test") as node:  # fmt: skip
        yield node


def _log_in(page: Any, web: RunningWeb, email: str, password: str) -> None:
    page.goto(web.url + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/login/second-factor$"))


def _enrol(page: Any) -> pyotp.TOTP:
    """Read the key beside the QR code (as a person would type it into an app), give the first code."""
    page.wait_for_selector("#enrol:not([hidden])")
    assert page.locator("#enrol-qr").get_attribute("src").startswith("data:image/svg+xml;base64,")
    totp = pyotp.TOTP(page.locator("#enrol-secret").inner_text())
    page.fill("#code", totp.now())
    page.locator("#code-form button[type=submit]").click()
    page.wait_for_selector("#recovery:not([hidden])")
    assert page.locator("#recovery-codes li").count() == 10
    return totp


def test_a_partner_runs_a_customer_from_the_console(browser: Any, web: RunningWeb, mail: tuple[MailSink, int]) -> None:  # noqa: F811
    sink, _ = mail
    context = browser.new_context(locale="it", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    _log_in(page, web, PARTNER_ADMIN, PASSWORD)
    totp = _enrol(page)
    screenshot(page, "console-enrol-recovery-it")
    page.locator("#logout").click()
    page.wait_for_url(re.compile(r"/login$"))

    # Password, then the next TOTP code (the enrolment's one would be a replay).
    _log_in(page, web, PARTNER_ADMIN, PASSWORD)
    page.fill("#code", totp.at(time.time() + 30))
    page.locator("#code-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/console$"))
    screenshot(page, "console-choose-company-it")
    page.get_by_role("button", name="Provider Uno").click()
    page.wait_for_selector("#customer-form")

    # A customer: an invalid VAT number is refused under its field, in Italian.
    page.fill("#c-name", "Gamma Srl")
    page.fill("#c-vat", "00743110158")
    page.locator("#customer-form button[type=submit]").click()
    refusal = page.locator("#err-vat_number")
    refusal.wait_for()
    assert "partita IVA" in refusal.inner_text() and "controllo" in refusal.inner_text()
    page.fill("#c-vat", "00743110157")
    page.locator("#customer-form button[type=submit]").click()
    page.wait_for_selector("#customers-table tr[data-key='Gamma Srl']")
    screenshot(page, "console-customers-it")

    # The customer's view, from the menu at the top right; invite its administrator there.
    page.select_option("#view-switch", label="Gamma Srl")
    page.wait_for_selector(".view-badge")
    page.fill("#i-first", "Gino")
    page.fill("#i-last", "Gamma")
    page.fill("#i-email", NEW_ADMIN)
    page.select_option("#i-console", "admin")
    page.locator("#invite-form button[type=submit]").click()
    page.wait_for_selector("#users-table tr[data-key='Gino']")
    assert send_owed_links(web) == 1
    body = sink.to(NEW_ADMIN)[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "72 ore" in body
    link = re.search(r"(http://\S+/password-reset#\S+)", body)
    assert link, body
    customer_log = page.locator("#log-table tbody tr")
    page.wait_for_function("() => document.querySelectorAll('#log-table tbody tr').length >= 1")
    assert "Utente invitato" in customer_log.first.inner_text() and PARTNER_ADMIN in customer_log.first.inner_text()
    assert "127.0.0.1" in customer_log.first.inner_text()

    # The invited person: a password from the link, a second factor, and in.
    other = browser.new_context(locale="it", viewport={"width": 800, "height": 1100}).new_page()
    other.goto(link.group(1))
    other.fill("#new-password", NEW_PASSWORD)
    other.fill("#new-password-again", NEW_PASSWORD)
    other.locator("#reset-form button[type=submit]").click()
    other.wait_for_selector("#reset-done:not([hidden])")
    _log_in(other, web, NEW_ADMIN, NEW_PASSWORD)
    _enrol(other)
    other.locator("#recovery a").click()
    other.wait_for_url(re.compile(r"/console$"))
    other.wait_for_selector("#users-table tr[data-key='Gino']")
    assert other.locator("#customers").count() == 0  # a customer's administrator sees no customers
    screenshot(other, "console-customer-admin-tablet-it")
    other.context.close()

    # Back in the partner's view: its log has the customer, with actor and address; the detail shows before/after.
    page.select_option("#view-switch", label="Provider Uno")
    page.wait_for_selector("#customer-form")
    page.wait_for_function("() => document.querySelectorAll('#log-table tbody tr').length >= 1")
    first = page.locator("#log-table tbody tr").first
    assert "Cliente creato" in first.inner_text() and "Gamma Srl" in first.inner_text()
    assert PARTNER_ADMIN in first.inner_text() and "127.0.0.1" in first.inner_text()
    first.get_by_role("button").click()
    detail = page.locator("#log-detail")
    detail.wait_for()
    assert "00743110157" in detail.inner_text()
    screenshot(page, "console-log-detail-it")
    page.keyboard.press("Escape")
    # The dashboard counts the new customer.
    assert page.locator("#dashboard-cards .figure").first.locator("strong").inner_text() == "2"
    context.close()
