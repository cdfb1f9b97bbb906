"""The hotel's described administration pages: outbound classes, room
templates with their defaults (every seed field, the nine failovers), and the
daily wake-up calls. Through the API (each role and each other PBX refused,
refusals in Italian on their field, changes that reach Asterisk bumping the
PBX's serial) and in Chromium on both stores: add, edit in the dialog,
a refusal under its field, remove; screenshots at 1280x800 and 800x1100."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from kalliope_tel.db.engine import transaction
from kalliope_tel.extensions import accounts as ext_accounts
from kalliope_tel.hotel import services as hotel
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.wakeup import series
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.web_node import RunningWeb, assert_refused, browser_login, seeded_web
from tests.web_support import ADMIN, FAX_USER, OTHER_RECEPTION, RECEPTION

pytestmark = [pytest.mark.integration]
API = "/api/v1/pbx/default"
IT = {"accept-language": "it"}


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("web-admin-hotel")) as node:
        yield node


def _serial(web: RunningWeb) -> int:
    with transaction(web.container.sessions, read_only=True) as s:
        return get_pbx(s).config_serial


def test_classes_are_added_changed_refused_in_italian_and_removed(web: RunningWeb) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    serial = _serial(web)
    added = client.post(f"{API}/hotel/classes", json={"name": "local", "patterns": ["_0X.", "112"],
                                                       "trunk_context": "kt-lab-pstn", "description": "Local calls"},
                        headers=h)  # fmt: skip
    assert added.status_code == 201 and added.json()["patterns"] == ["_0X.", "112"], added.text
    assert _serial(web) > serial
    changed = client.patch(f"{API}/hotel/classes/local", json={"patterns": ["_0[1-9]X."]}, headers=h)
    assert changed.status_code == 200 and changed.json()["patterns"] == ["_0[1-9]X."]
    # A pattern the configuration gate refuses: in Italian, naming the field.
    bad = client.patch(f"{API}/hotel/classes/local", json={"patterns": ["_0X;System(x)"]}, headers=h | IT)
    assert bad.status_code == 400 and bad.json()["code"] == "gate.pattern", bad.text
    assert bad.json()["detail"].startswith("pattern del dialplan '_0X;System(x)'")
    in_use = client.delete(f"{API}/hotel/classes/standard", headers=h | IT)
    assert in_use.status_code == 409 and "è usata" in in_use.json()["detail"], in_use.text
    assert client.delete(f"{API}/hotel/classes/local", headers=h).status_code == 204
    assert "local" not in [c["name"] for c in client.get(f"{API}/hotel/classes").json()]


def test_templates_carry_every_seed_field_and_failover(web: RunningWeb) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    defaults = client.put(f"{API}/hotel/template-defaults", json={"ring_timeout": 25, "failover.busy.external": "100"},
                          headers=h).json()  # fmt: skip
    assert (defaults["ring_timeout"], defaults["failover.busy.external"]) == (25, "100")
    wanted = {"name": "suite", "ldap_mode": "public", "show_in_phonebook": True, "failover.noanswer.internal": "hangup"}
    made = client.post(f"{API}/hotel/templates", json=wanted, headers=h)
    assert made.status_code == 201, made.text
    suite = made.json()
    # What was not given came from the defaults, failovers included.
    assert (suite["ldap_mode"], suite["ring_timeout"], suite["failover.busy.external"]) == ("public", 25, "100")
    assert suite["failover.noanswer.internal"] == "hangup" and suite["standard_class"] == "standard"
    changed = client.patch(f"{API}/hotel/templates/suite", json={"calls_limit": 2, "failover.busy.external": "",
                                                                 "organization": "Annex"}, headers=h)  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert (changed.json()["calls_limit"], changed.json()["failover.busy.external"]) == (2, "")
    with transaction(web.container.sessions, read_only=True) as s:
        row = hotel.get_template(s, get_pbx(s), "suite")
        assert {f"{f.outcome.value}.{f.origin.value}": f.destination for f in row.failovers} == {
            "noanswer.internal": "hangup"
        }
        assert row.organization == "Annex"
    wrong = client.patch(f"{API}/hotel/templates/suite", json={"failover.busy.internal": "12;x"}, headers=h | IT)
    assert wrong.status_code == 400 and wrong.json()["code"] == "hotel.failover_destination", wrong.text
    unknown = client.patch(f"{API}/hotel/templates/suite", json={"colour": "red"}, headers=h)
    assert unknown.status_code == 400 and unknown.json()["params"]["setting"] == "colour"
    too_long = client.patch(f"{API}/hotel/templates/suite", json={"ring_timeout": 0}, headers=h | IT)
    assert too_long.status_code == 422 and too_long.json()["fields"] == {"ring_timeout": "almeno 1"}
    in_use = client.delete(f"{API}/hotel/templates/std", headers=h)
    assert in_use.status_code == 409
    assert client.delete(f"{API}/hotel/templates/suite", headers=h).status_code == 204


def test_daily_wake_up_series_are_listed_added_and_cancelled(web: RunningWeb) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    first = date.today() + timedelta(days=1)
    made = client.post(f"{API}/wakeup/series", json={"room": "102", "at": "07:15", "first": str(first),
                                                     "last": str(first + timedelta(days=3))}, headers=h)  # fmt: skip
    assert made.status_code == 201, made.text
    assert {k: made.json()[k] for k in ("room", "at", "first", "days")} == {
        "room": "102",
        "at": "07:15",
        "first": str(first),
        "days": 4,
    }
    reversed_days = {"room": "102", "at": "07:15", "first": str(first), "last": str(first - timedelta(days=2))}
    backwards = client.post(f"{API}/wakeup/series", json=reversed_days, headers=h | IT)
    assert backwards.status_code == 400 and backwards.json()["code"] == "wakeup.series_span"
    listed = client.get(f"{API}/wakeup/series").json()
    assert [s["room"] for s in listed] == ["102"]
    assert client.delete(f"{API}/wakeup/series/{made.json()['series']}", headers=h).status_code == 204
    with transaction(web.container.sessions, read_only=True) as s:
        assert series.list_series(s, get_pbx(s)) == []
    gone = client.delete(f"{API}/wakeup/series/{made.json()['series']}", headers=h | IT)
    assert gone.status_code == 404 and gone.json()["code"] == "wakeup.no_series"


ROUTES = [
    ("GET", "/hotel/classes"), ("POST", "/hotel/classes"), ("PATCH", "/hotel/classes/standard"),
    ("DELETE", "/hotel/classes/standard"), ("GET", "/hotel/templates"), ("POST", "/hotel/templates"),
    ("PATCH", "/hotel/templates/std"), ("DELETE", "/hotel/templates/std"), ("GET", "/hotel/template-defaults"),
    ("PUT", "/hotel/template-defaults"), ("GET", "/wakeup/series"), ("POST", "/wakeup/series"),
    ("DELETE", "/wakeup/series/x"),
]  # fmt: skip


@pytest.mark.parametrize("user", [RECEPTION, FAX_USER, OTHER_RECEPTION], ids=lambda u: u.name)
def test_nobody_else_reads_or_changes_them(web: RunningWeb, user: Any) -> None:
    assert_refused(web, user, ROUTES, ("admin", "admin/classes", "admin/templates", "admin/wakeup-daily"))


def test_the_pages_add_edit_refuse_and_remove_in_the_browser(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    page = browser_login(browser, web, ADMIN.email, lang="it")
    page.on("dialog", lambda dialog: dialog.accept())  # the "Remove ...?" questions
    # The hub lists the administration pages by group; the classes page from it.
    page.get_by_role("link", name="Amministrazione").click()
    page.get_by_role("link", name="Classi di instradamento").first.click()
    add = page.locator("[data-section=classes] details.add")
    add.locator("summary").click()
    add.get_by_label("Nome", exact=True).fill("mobile")
    add.get_by_label("Pattern").fill("_3XXXXXXXXX\n112")
    add.get_by_label("Contesto del trunk").fill("kt-lab-pstn")
    add.locator("button[type=submit]").click()
    page.locator("#classes tr[data-key=mobile]").wait_for()
    with transaction(web.container.sessions, read_only=True) as s:
        assert ext_accounts.get_class(s, get_pbx(s), "mobile").patterns == ["_3XXXXXXXXX", "112"]
    # Edit in the dialog; a bad pattern is refused under its field, in Italian.
    page.locator("#classes tr[data-key=mobile] button[data-action=edit]").click()
    dialog = page.locator("#record-dialog")
    dialog.get_by_label("Pattern").fill("_3X;Hangup")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("#record-dialog .field-error")
    assert "pattern del dialplan" in dialog.locator(".field-error").inner_text()
    screenshot(page, "admin-classes-dialog-refused-it")
    dialog.get_by_label("Pattern").fill("_3XXXXXXXXX")
    dialog.get_by_label("Descrizione").fill("Cellulari")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("#record-dialog", state="hidden")
    page.locator("#classes tr[data-key=mobile]", has_text="Cellulari").wait_for()
    page.locator("#classes tr[data-key=mobile] button[data-action=remove]").click()
    page.locator("#classes tr[data-key=mobile]").wait_for(state="detached")
    # Templates: the add form starts from the defaults; all nine failovers are there.
    page.get_by_role("link", name="Modelli delle camere").first.click()
    add = page.locator("[data-section=templates] details.add")
    add.locator("summary").click()
    assert add.locator("input[name^='failover.']").count() == 9
    # Playwright's own assertion, not wait_for_function: a string predicate
    # that is not true at once is polled with eval, which the pages' CSP refuses.
    expect(page.locator("#templates-add [name=ring_timeout]")).not_to_have_value("")
    add.get_by_label("Nome", exact=True).fill("junior")
    add.get_by_label("Nessuna risposta, chiamata interna").fill("100")
    add.locator("button[type=submit]").click()
    page.locator("#templates tr[data-key=junior]").wait_for()
    with transaction(web.container.sessions, read_only=True) as s:
        junior = hotel.get_template(s, get_pbx(s), "junior")
        # The one typed in, beside those the defaults give every new template.
        assert ("noanswer", "internal", "100") in [
            (f.outcome.value, f.origin.value, f.destination) for f in junior.failovers
        ]
    screenshot(page, "admin-templates-it")
    page.locator("#templates tr[data-key=junior] button[data-action=edit]").click()
    screenshot(page, "admin-templates-dialog-it")
    page.keyboard.press("Escape")
    # Daily wake-up calls, on a tablet held upright.
    page.set_viewport_size({"width": 800, "height": 1100})
    page.get_by_role("link", name="Sveglie giornaliere").first.click()
    add = page.locator("[data-section=series] details.add")
    add.locator("summary").click()
    add.get_by_label("Camera", exact=True).select_option("103")
    add.get_by_label("Ora", exact=True).fill("06:45")
    tomorrow = date.today() + timedelta(days=1)
    add.get_by_label("Dal", exact=True).fill(str(tomorrow))
    add.get_by_label("Al", exact=True).fill(str(tomorrow + timedelta(days=1)))
    add.locator("button[type=submit]").click()
    page.locator("#series tr", has_text="06:45").wait_for()
    screenshot(page, "admin-wakeup-daily-800x1100-it")
    page.locator("#series tr", has_text="06:45").locator("button[data-action=remove]").click()
    page.locator("#series tr", has_text="06:45").wait_for(state="detached")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="Amministrazione").click()
    screenshot(page, "admin-hub-it")
    page.context.close()
