"""axe-core (bundled by axe-playwright-python) on every page, in Debian's
Chromium, in both languages: no serious or critical violation, and none at
all of the kinds these pages once had. Every page an administrator opens,
the login page, and a forbidden page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest

from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.web_node import RunningWeb, browser_login, seeded_web
from tests.web_support import ADMIN, FAX_USER

pytestmark = [pytest.mark.integration]
AXE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
PAGES = [
    "/pbx/default/panel",
    "/pbx/default/stays",
    "/pbx/default/fax",
    "/pbx/default/lam",
    "/pbx/default/admin/users",
    "/pbx/default/admin/rooms",
    "/pbx/default/admin/hotel",
    "/pbx/default/admin/wakeup",
    "/pbx/default/admin",
    "/pbx/default/admin/templates",
    "/pbx/default/admin/classes",
    "/pbx/default/admin/wakeup-daily",
    "/pbx/default/admin/fax",
    "/pbx/default/admin/fax-instances",
    "/pbx/default/admin/mail2fax",
    "/pbx/default/admin/lam",
    "/pbx/default/admin/billing",
    "/api/docs",
]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web("sqlite", tmp_path_factory.mktemp("web-a11y")) as node:
        yield node


def _violations(page: Any) -> list[tuple[str, str, int]]:
    # Injected through the DevTools protocol, which the pages' CSP does not govern.
    page.evaluate(AXE)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]]


@pytest.mark.parametrize("lang", ["en", "it"])
def test_no_page_has_an_accessibility_violation(browser: Any, web: RunningWeb, lang: str) -> None:  # noqa: F811
    page = browser_login(browser, web, ADMIN.email, lang=lang)
    found = {}
    for path in PAGES:
        page.goto(web.url + path)
        page.wait_for_timeout(800)  # the page's data arrive (the rack's stream never idles)
        # The described pages' add forms are folded: unfolded, axe checks them too.
        page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
        found[path] = _violations(page)
        if lang == "it":  # every page kept as a test artifact, on a desk and on an upright tablet
            name = path.strip("/").replace("/", "-").replace("pbx-default-", "") or "home"
            screenshot(page, f"page-{name}-1280x800-it")
            page.set_viewport_size({"width": 800, "height": 1100})
            screenshot(page, f"page-{name}-800x1100-it")
            page.set_viewport_size({"width": 1280, "height": 800})
    page.context.close()
    serious = {p: [v for v in vs if v[1] in ("serious", "critical")] for p, vs in found.items()}
    assert {p: v for p, v in serious.items() if v} == {}
    assert {p: v for p, v in found.items() if v} == {}  # minor ones too: there are none left


def test_the_login_and_a_forbidden_page_too(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    anonymous = browser.new_context(locale="it").new_page()
    anonymous.goto(web.url + "/login")
    assert _violations(anonymous) == []
    anonymous.context.close()
    page = browser_login(browser, web, FAX_USER.email, landing=r"/pbx/default/fax$")
    response = page.goto(web.url + "/pbx/default/panel")
    assert response is not None and response.status == 403
    assert _violations(page) == []
    page.context.close()


def test_the_console_and_the_second_factor_pages_too(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    """A partner's administrator: the enrolment page, the recovery codes, and the Console in both languages."""
    import re

    import pyotp

    from kalliope_tel.accounts import services as accounts
    from kalliope_tel.accounts.models import ConsoleRole
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.tenancy import companies
    from tests.web_support import PASSWORD

    with transaction(web.container.sessions) as session:
        partner = companies.installation_partner(session)
        companies.create_customer(session, partner, "Alfa Srl", vat="00743110157")
        account = accounts.create_account(session, "console@a11y.test", "Carla", "Console")
        accounts.set_password(session, account, PASSWORD)
        accounts.join_company(session, account, partner, console=ConsoleRole.ADMIN, manage_customers=True)
    page = browser.new_context(locale="it", viewport={"width": 1280, "height": 800}).new_page()
    page.goto(web.url + "/login")
    page.fill("#email", "console@a11y.test")
    page.fill("#password", PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_selector("#enrol:not([hidden])")
    found = {"enrol": _violations(page)}
    page.fill("#code", pyotp.TOTP(page.locator("#enrol-secret").inner_text()).now())
    page.locator("#code-form button[type=submit]").click()
    page.wait_for_selector("#recovery:not([hidden])")
    found["recovery"] = _violations(page)
    page.locator("#recovery a").click()
    page.wait_for_url(re.compile(r"/console$"))
    for lang in ("it", "en"):
        page.goto(web.url + f"/console?lang={lang}")
        page.wait_for_selector("#customers-table tbody tr")
        found[f"console-{lang}"] = _violations(page)
        screenshot(page, f"page-console-1280x800-{lang}")
    page.set_viewport_size({"width": 800, "height": 1100})
    screenshot(page, "page-console-800x1100-en")
    page.context.close()
    assert {p: v for p, v in found.items() if v} == {}
