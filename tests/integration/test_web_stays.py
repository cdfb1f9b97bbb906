"""The stay history in the browser: receptionists list current and past
stays by room, text and period, and download a stay's call report as XLSX
(opened here with openpyxl); other roles are refused; the page in Chromium."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest

from kalliope_tel.hotel import stays
from kalliope_tel.tenancy.services import get_pbx
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.web_node import RunningWeb, browser_login, seeded_web
from tests.web_support import FAX_USER, OTHER_RECEPTION, RECEPTION, seed_web_hotel

pytestmark = [pytest.mark.integration]
API = "/api/v1/pbx/default/stays"


def _seed(session: Any) -> None:
    seed_web_hotel(session)
    pbx = get_pbx(session)
    stays.check_in(session, pbx, "101", "Anna Neri", guests=["Bo Neri"], notes='=HYPERLINK("http://x","y")')
    stays.check_out(session, pbx, "101")
    stays.check_in(session, pbx, "102", "Carlo Verdi")


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("web-stays"), seed=_seed) as node:
        yield node


def test_a_receptionist_lists_stays_and_downloads_a_report(web: RunningWeb) -> None:
    client, _ = web.login(RECEPTION)
    every = client.get(API).json()
    assert [(s["room"], s["owner"], s["checkout_at"] is None) for s in every] == [
        ("102", "Carlo Verdi", True), ("101", "Anna Neri", False),
    ]  # fmt: skip
    assert [s["room"] for s in client.get(API, params={"current": "true"}).json()] == ["102"]
    assert [s["room"] for s in client.get(API, params={"text": "bo neri"}).json()] == ["101"]
    assert [s["room"] for s in client.get(API, params={"room": "102"}).json()] == ["102"]
    assert client.get(API, params={"since": "2999-01-01 00:00"}).json() == [
        s for s in every if s["checkout_at"] is None
    ]  # a stay still open runs on
    bad = client.get(API, params={"since": "yesterday"}, headers={"accept-language": "it"})
    assert bad.status_code == 400 and "AAAA-MM-GG" in bad.json()["detail"]
    stay_id = every[1]["id"]
    report = client.get(f"{API}/{stay_id}/report.xlsx")
    assert report.status_code == 200 and report.headers["content-disposition"].endswith('.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(report.content))
    cells = [c.value for row in book.active.iter_rows() for c in row if c.value is not None]  # type: ignore[union-attr]
    assert "101" in cells and "Anna Neri, Bo Neri" in cells
    assert client.get(f"{API}/{stay_id}/report.pdf").status_code == 400
    assert client.get(f"{API}/999999/report.csv").status_code == 404


@pytest.mark.parametrize("user", [FAX_USER, OTHER_RECEPTION], ids=lambda u: u.name)
def test_other_roles_and_pbxs_are_refused(web: RunningWeb, user: Any) -> None:
    client, _ = web.login(user)
    assert client.get(API).status_code == 403
    assert client.get(f"{API}/1/report.xlsx").status_code == 403
    assert client.get("/pbx/default/stays").status_code == 403


def test_the_history_page_filters_and_links_the_reports(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    page = browser_login(browser, web, RECEPTION.email)
    page.get_by_role("link", name="Stays").click()
    page.wait_for_selector("#stays tbody tr")
    assert page.locator("#stays tbody tr").count() == 2
    page.locator("#stays-filters input[name=current]").check()
    page.locator("#stays-filters button[type=submit]").click()
    page.wait_for_timeout(500)  # the filtered list replaces the table
    assert page.locator("#stays tbody tr").count() == 1
    assert page.locator("#stays tbody tr a[data-kind=xlsx]").count() == 1
    screenshot(page, "stays-history")
    page.context.close()
