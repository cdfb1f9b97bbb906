"""SIP trunks and numbers in Chromium, in Italian, on both stores: a
customer's Manager administrator adds a trunk (a missing password refused
under its field), a 2-digit block on it from the keyboard, sees an
overlapping number refused under the number's field with the number it
collides with, and the trunk with numbers kept when deleted. The page
fits a tablet's width. Screenshots are kept as artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from sqlalchemy.orm import Session

from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import ManagerRole
from kalliope_tel.omnia import manager
from kalliope_tel.oplog.services import Actor
from kalliope_tel.tenancy import companies
from kalliope_tel.trunks import services as trunks
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.console_support import browser_login
from tests.web_node import RunningWeb, seeded_web
from tests.web_support import PASSWORD

pytestmark = [pytest.mark.integration]
MANAGER = "tina@sigma.test"
SECRET = pyotp.random_base32()


def _seed(session: Session) -> None:
    sigma = companies.create_customer(session, companies.installation_partner(session), "Sigma Srl")
    tina = accounts.create_account(session, MANAGER, "Tina", "Manager")
    accounts.set_password(session, tina, PASSWORD)
    tina.totp_secret = SECRET
    accounts.join_company(session, tina, sigma, manager=ManagerRole.ADMIN)
    actor = Actor("seed", "cli")
    manager.create_pbx(session, actor, sigma, "sigma", name="Sigma uffici")
    trunks.save_carrier(session, actor, "LabTel", ["sip.example.net", "sbc.example.net:5080"], "udp", "alaw", True)


@pytest.fixture
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("trunks-browser"), seed=_seed) as node:
        yield node


def _login(page: Any, web: RunningWeb) -> None:
    browser_login(page, web.url, MANAGER, SECRET)
    page.goto(web.url + "/manager")


def test_trunks_and_numbers_in_the_browser(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    page = browser.new_context(locale="it", viewport={"width": 1280, "height": 900}).new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    _login(page, web)
    page.wait_for_selector("#t-carrier option[value='LabTel']", state="attached")
    page.fill("#t-description", "Linea principale")
    page.select_option("#t-endpoint", "sbc.example.net:5080")
    page.fill("#t-username", "sigma1")
    page.locator("#trunk-form button[type=submit]").click()
    refusal = page.locator("#err-password")
    refusal.wait_for()
    assert "password" in refusal.inner_text().lower()
    page.fill("#t-password", "Segreta-123")
    page.locator("#trunk-form button[type=submit]").click()
    page.wait_for_selector("#trunk-table tbody tr")
    row = page.locator("#trunk-table tbody tr").first.inner_text()
    assert "Linea principale" in row and "sbc.example.net:5080" in row and "Sconosciuto" in row
    assert "Segreta-123" not in page.content()
    screenshot(page, "manager-trunks-it")

    # A 2-digit block, typed and sent from the keyboard.
    page.wait_for_selector("#n-trunk option", state="attached")
    page.locator("#n-number").focus()
    page.keyboard.type("0612345600")
    page.select_option("#n-type", "2")
    page.locator("#n-number").press("Enter")
    page.wait_for_selector("#num-table tr[data-key='06123456XX']")
    # An overlapping number: refused under its field, naming the block.
    page.fill("#n-number", "0612345642")
    page.select_option("#n-type", "0")
    page.locator("#num-form button[type=submit]").click()
    overlap = page.locator("#err-number")
    overlap.wait_for()
    assert "0612345600" in overlap.inner_text() and "sovrappone" in overlap.inner_text()
    screenshot(page, "manager-numbers-it")
    # The trunk with a number is kept, with the reason.
    page.locator("#trunk-table tbody tr button", has_text="Elimina").click()
    page.wait_for_selector("#toast.error")
    assert "0612345600" in page.locator("#toast").inner_text()
    assert page.locator("#trunk-table tbody tr").count() == 1
    # The PBX list counts the number; the log has every step.
    assert "Numerazione creata" in page.locator("#log-table").inner_text()

    # The same session on a tablet (a second login in the same 30 s would replay the code: refused).
    tablet = browser.new_context(
        locale="it", viewport={"width": 768, "height": 1024}, has_touch=True, storage_state=page.context.storage_state()
    ).new_page()
    tablet.goto(web.url + "/manager")
    tablet.wait_for_selector("#num-table tr[data-key='06123456XX']")
    assert tablet.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(tablet, "manager-numbers-tablet-it")
