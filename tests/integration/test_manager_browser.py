"""Omnia Manager in Chromium, in Italian, on both stores, with a serve node
applying what the browser changes to the lab Asterisk: a customer's Manager
administrator creates a PBX and two extensions, reads the SIP password once
in its dialog, and a phone with it registers over real SIP within 5 s and
calls the other extension; the Suspend button ends its registration within
5 s; Delete leaves no endpoint. A wrong PIN is refused under its field, and
the Manager log lists every step."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from sqlalchemy.orm import Session

from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import ManagerRole
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.tenancy import companies
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.console_support import browser_login
from tests.helpers import ServeNode, serve_env
from tests.integration.test_manager_lab import _phone_conf, register_within
from tests.integration.test_wakeup_serve import stop
from tests.web_node import RunningWeb, seeded_web
from tests.web_support import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.asterisk, pytest.mark.both_stores]
MANAGER = "mara@omega.test"
SECRET = pyotp.random_base32()
SLUG = "omega"


def _seed(session: Session) -> None:
    omega = companies.create_customer(session, companies.installation_partner(session), "Omega Srl")
    mara = accounts.create_account(session, MANAGER, "Mara", "Manager")
    accounts.set_password(session, mara, PASSWORD)
    mara.totp_secret = SECRET  # enrolled already (the Console's browser test covers the enrolment)
    accounts.join_company(session, mara, omega, manager=ManagerRole.ADMIN)


@pytest.fixture
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("manager-browser"), seed=_seed) as node:
        yield node


def _calls(lab: LabInstance, key: str) -> int:
    found = re.search(rf"/ktlab/calls/{key}\s*:\s*(\d+)", lab.cli("database show ktlab/calls"))
    return int(found.group(1)) if found else 0


def test_an_extension_made_in_the_browser_registers_and_calls(
    browser: Any,  # noqa: F811
    web: RunningWeb,
    lab: LabInstance,
    lab_state: LabState,
) -> None:
    node = ServeNode(serve_env(lab_state, web.container.settings.database_url, KALLIOPE_NODE_NAME="mgr-browser"))
    phone = lab.dir / "etc" / "kalliope" / "pjsip_mgrphone.conf"
    page = browser.new_context(locale="it", viewport={"width": 1280, "height": 900}).new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations of suspend and delete
    try:
        browser_login(page, web.url, MANAGER, SECRET)
        page.goto(web.url + "/manager")

        page.fill("#p-slug", SLUG)
        page.fill("#p-name", "Omega uffici")
        page.fill("#p-start", "10")
        page.locator("#pbx-form button[type=submit]").click()
        page.wait_for_selector(f"#pbxs-table tr[data-key='{1}'], #pbxs-table tbody tr")
        assert "Omega uffici" in page.locator("#pbxs-table").inner_text()

        # A PIN of letters is refused under its field, in Italian.
        page.fill("#e-number", "201")
        page.fill("#e-pin", "12ab")
        page.locator("#ext-form button[type=submit]").click()
        refusal = page.locator("#err-pin")
        refusal.wait_for()
        assert "cifre" in refusal.inner_text()
        page.fill("#e-pin", "2468")
        page.fill("#e-name", "Anna")
        page.locator("#ext-form button[type=submit]").click()
        page.wait_for_selector("#secret-dialog[open]")
        login = page.locator("#secret-table tbody td").nth(0).inner_text()
        password = page.locator("#secret-table tbody td").nth(1).inner_text()
        screenshot(page, "manager-credentials-it")
        assert login == f"{SLUG}-201" and len(password) >= 10
        page.locator("#secret-dialog button[value=close]").click()
        page.fill("#e-number", "202")
        page.fill("#e-name", "Bruno")
        page.locator("#ext-form button[type=submit]").click()
        page.wait_for_selector("#secret-dialog[open]")
        page.locator("#secret-dialog button[value=close]").click()
        page.wait_for_selector("#ext-table tr[data-key='202']")
        screenshot(page, "manager-extensions-it")

        # serve makes it live on its own; the phone registers within 5 s of asking and calls 202.
        deadline = time.monotonic() + 30
        while "Attivo" not in page.locator("#pbxs-table").inner_text():
            assert time.monotonic() < deadline, "the PBX never became Active"
            page.reload()
            page.wait_for_selector("#pbxs-table tbody tr")
        phone.write_text(_phone_conf(lab_state, login, password))
        lab.cli("module reload res_pjsip.so", check=False)
        took = register_within(lab, 5)
        assert took < 5
        before = _calls(lab, f"{SLUG}-202")
        lab.cli("channel originate PJSIP/202@mgrphone application Wait 2", check=False)
        deadline = time.monotonic() + 8
        while _calls(lab, f"{SLUG}-202") == before:
            assert time.monotonic() < deadline, "the call from 201 never reached 202"
            time.sleep(0.2)

        # Suspend from the browser: within 5 s the endpoint and its registration are gone.
        page.locator("#ext-table tr[data-key='201'] button", has_text="Sospendi").click()
        clicked = time.monotonic()
        while "Unable to find" not in lab.cli(f"pjsip show aor {login}", check=False):
            assert time.monotonic() - clicked < 5, "the suspension took longer than 5 s"
            time.sleep(0.1)
        page.locator("#ext-table tr[data-key='201'] button", has_text="Elimina").click()
        page.wait_for_selector("#ext-table tr[data-key='201']", state="detached")
        log = page.locator("#log-table").inner_text()
        for operation in ("PBX creato", "Interno creato", "Interno sospeso", "Interno eliminato"):
            assert operation in log
        screenshot(page, "manager-log-it")
    finally:
        phone.unlink(missing_ok=True)
        lab.cli("module reload res_pjsip.so", check=False)
        stop(node)
