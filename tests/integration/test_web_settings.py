"""A PBX's wake-up settings in the browser, for its administrators: read and
changed through the API and the page (Chromium), refusals per field in the
reader's language, nobody else allowed; the change bumps the PBX's
configuration serial (serve applies it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kalliope_tel.db.engine import transaction
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.wakeup import services as wakeup
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.web_node import RunningWeb, browser_login, seeded_web
from tests.web_support import ADMIN, FAX_USER, OTHER_RECEPTION, RECEPTION

pytestmark = [pytest.mark.integration]
API = "/api/v1/pbx/default/wakeup/settings"


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("web-settings")) as node:
        yield node


def _serial(web: RunningWeb) -> int:
    with transaction(web.container.sessions, read_only=True) as s:
        return get_pbx(s).config_serial


def test_an_administrator_reads_and_changes_the_wake_up_settings(web: RunningWeb) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    before = client.get(API).json()
    assert set(before) >= {"attempts", "ring_timeout", "interval", "confirm_answer", "confirm_listen", "message"}
    serial = _serial(web)
    changed = client.put(API, json={"attempts": 5, "confirm_answer": True, "name": "Sveglia"}, headers=h)
    assert changed.status_code == 200 and (changed.json()["attempts"], changed.json()["name"]) == (5, "Sveglia")
    assert changed.json()["ring_timeout"] == before["ring_timeout"]  # the others stay
    assert _serial(web) > serial  # serve applies it to Asterisk
    with transaction(web.container.sessions, read_only=True) as s:
        assert wakeup.get_settings(s, get_pbx(s)).attempts == 5
    too_many = client.put(API, json={"attempts": 99}, headers=h | {"accept-language": "it"})
    assert too_many.status_code == 422 and too_many.json()["fields"] == {"attempts": "al massimo 10"}
    unsafe = client.put(API, json={"number": "12;Hangup"}, headers=h | {"accept-language": "it"})
    assert unsafe.status_code == 400 and unsafe.json()["code"] == "gate.number"
    assert unsafe.json()["params"]["setting"] == "number"


@pytest.mark.parametrize("user", [RECEPTION, FAX_USER, OTHER_RECEPTION], ids=lambda u: u.name)
def test_nobody_else_reads_or_changes_them(web: RunningWeb, user: Any) -> None:
    client, csrf = web.login(user)
    assert client.get(API).status_code == 403
    assert client.put(API, json={"attempts": 2}, headers={"x-csrf-token": csrf}).status_code == 403
    assert client.get("/pbx/default/admin/wakeup").status_code == 403


def test_the_settings_page_saves_and_shows_a_refusal_on_its_field(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    page = browser_login(browser, web, ADMIN.email, lang="it")
    page.get_by_role("link", name="Amministrazione").click()
    page.get_by_role("link", name="Sveglie", exact=True).first.click()
    page.locator("#w-attempts").wait_for()
    page.wait_for_timeout(300)  # the values arrive from the API
    page.fill("#w-interval", "120")
    page.locator("#settings-form button[type=submit]").click()
    page.wait_for_selector("#toast.show:not(.error)")
    with transaction(web.container.sessions, read_only=True) as s:
        assert wakeup.get_settings(s, get_pbx(s)).interval == 120
    # A number the configuration gate refuses: the message in Italian, under the field.
    page.fill("#w-number", "12;Hangup")
    page.locator("#settings-form button[type=submit]").click()
    page.wait_for_selector("#err-number")
    assert page.locator("#w-number").get_attribute("aria-invalid") == "true"
    screenshot(page, "admin-wakeup-settings-it")
    page.context.close()


HOTEL = "/api/v1/pbx/default/hotel/settings"


def test_an_administrator_changes_the_hotel_settings_and_a_refusal_names_its_field(web: RunningWeb) -> None:
    from kalliope_tel.hotel import services as hotel

    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    data = client.get(HOTEL).json()
    assert data["checkout_dirty"] is True and data["classes"]
    changed = client.put(HOTEL, json={"checkout_dirty": False, "nightly_dirty_at": "04:30", "cleaning_prefix": "*44"},
                         headers=h)  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert (changed.json()["checkout_dirty"], changed.json()["nightly_dirty_at"]) == (False, "04:30")
    with transaction(web.container.sessions, read_only=True) as s:
        settings = hotel.get_settings(s, get_pbx(s))
        assert (settings.checkout_dirty, settings.cleaning_prefix) == (False, "*44")
    overlap = client.put(HOTEL, json={"cleaning_prefix": "10"}, headers=h | {"accept-language": "it"})
    assert overlap.status_code == 400 and overlap.json()["params"]["setting"] == "cleaning_prefix"
    assert "si sovrappone" in overlap.json()["detail"]
    late = client.put(HOTEL, json={"nightly_dirty_at": "25:00"}, headers=h)
    assert late.status_code == 400 and late.json()["code"] == "hotel.bad_time"
    assert client.put(HOTEL, json={"checkout_dirty": True, "cleaning_prefix": "*33"}, headers=h).status_code == 200
    for user in (RECEPTION, FAX_USER, OTHER_RECEPTION):
        other, other_csrf = web.login(user)
        assert other.get(HOTEL).status_code == 403
        assert other.put(HOTEL, json={"checkout_dirty": False}, headers={"x-csrf-token": other_csrf}).status_code == 403
