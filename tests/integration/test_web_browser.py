"""The pages in Debian's Chromium against a real 'serve' and the lab Asterisk:
the receptionist panel (check-in, filters, a phone's cleaning code arriving
live, the unanswered-alarm alerts on two panels) and the fax pages.
Screenshots of each page are kept as test artifacts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import stays
from kalliope_tel.lab.dial import lab_dial
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.lam import services as lam
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.wakeup import services as wakeup
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.conftest import drop_pg_database, kalliope, new_database_url
from tests.fax_service_support import MailSink, smtp_server
from tests.helpers import ServeNode, apply_lab_config, serve_env
from tests.web_support import (
    ADMIN,
    FAX_USER,
    PASSWORD,
    RECEPTION,
    WebUser,
    seed_received_fax,
    seed_web_hotel,
    write_pdf,
)

pytestmark = [pytest.mark.integration, pytest.mark.asterisk, pytest.mark.both_stores]
NO_ANSWER_ROOM = "251"


@dataclass
class Site:
    url: str  # the web's base URL
    database_url: str
    container: Container
    lab: LabInstance
    state: LabState
    node: ServeNode
    mail: MailSink

    def change(self, work: Any) -> Any:
        # The write lock first: on SQLite a read-then-write beside serve's writers fails otherwise.
        with transaction(self.container.sessions) as session:
            return work(session, get_pbx(session))

    def dial(self, caller: str, number: str) -> Any:
        client = AriClient(
            self.state.ari_url, self.state.ari_username, self.state.ari_password,
            apps=[f"kt-dial-{uuid.uuid4().hex[:6]}"],
        )  # fmt: skip
        return off_the_loop(lambda: lab_dial(client, caller, number, max_duration=8))


def off_the_loop(make: Any) -> Any:
    """Run a coroutine to its end on a thread of its own: Playwright's sync
    API keeps an event loop running on this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _http_port(node: ServeNode, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in node.output().splitlines():
            if '"web.listening"' in line:
                return int(json.loads(line)["port"])
        assert node.poll() is None, node.output()[-3000:]
        time.sleep(0.2)
    raise AssertionError("serve never said where the web listens:\n" + node.output()[-3000:])


@pytest.fixture(scope="module")
def site(
    db_backend: str, lab: LabInstance, lab_state: LabState, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("web-site")
    url, handle = new_database_url(db_backend, data_dir)
    container = Container(Settings(database_url=url, data_dir=data_dir))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as session:
        seed_web_hotel(session, trunk_context="kt-lab-trunk", accounts=1)
        seed_received_fax(session, data_dir, pages=2)
        wakeup.update_settings(
            session, get_pbx(session), name="Wake-up", number="900", message="beep",
            attempts=1, ring_timeout=5, interval=1,
        )  # fmt: skip
        pbx = get_pbx(session)
        lam.update_settings(session, pbx, licences=1)
        lam.create_room(session, pbx, "Blue")
        lam.set_owners(session, pbx, "Blue", [ADMIN.name])
    off_the_loop(lambda: apply_lab_config(container, lab))
    lab.cli(f"database put ktlab/phone {NO_ANSWER_ROOM} phone-noanswer")
    with smtp_server() as (sink, smtp_port):
        node = ServeNode(
            serve_env(lab_state, url, KALLIOPE_DATA_DIR=str(data_dir), KALLIOPE_SCHEDULER_INTERVAL_SECONDS="0.2",
                      KALLIOPE_NODE_NAME=f"web-{db_backend}", KALLIOPE_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
                      KALLIOPE_MAIL_FROM="lam@hotel.test", KALLIOPE_FAX_TICK_SECONDS="0.5",
                      KALLIOPE_LAM_JITSI_URL="https://meet.hotel.test",
                      KALLIOPE_LAM_JITSI_SECRET="browser-test-secret-at-least-32-bytes-long")
        )  # fmt: skip
        try:
            yield Site(f"http://127.0.0.1:{_http_port(node)}", url, container, lab, lab_state, node, sink)
        finally:
            node.finish(30)
        lab.cli(f"database del ktlab/phone {NO_ANSWER_ROOM}")
        container.close()
        if handle:
            drop_pg_database(str(handle))


def log_in(chromium: Any, site: Site, user: WebUser, *, lang: str = "en") -> Any:
    context = chromium.new_context(locale=lang, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(site.url + "/")
    page.wait_for_url(re.compile(r"/login$"))
    page.get_by_label(re.compile("E-mail|Indirizzo")).fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    try:
        page.wait_for_url(re.compile(r"/pbx/default/(panel|fax)$"), timeout=20000)
    except PlaywrightTimeout:
        # Say why: the login form's error, or where the browser is.
        error = page.locator("#login-error")
        shown = error.inner_text() if error.count() and error.is_visible() else ""
        screenshot(page, f"login-failed-{user.name}")
        errors = [line for line in site.node.output().splitlines() if '"error"' in line or "Traceback" in line]
        raise AssertionError(
            f"login as {user.email} did not arrive: {shown!r} at {page.url}; serve said: {errors[-5:]}"
        ) from None
    return page


def live(page: Any) -> None:
    page.wait_for_selector("#live[data-state=live]", timeout=10000)
    page.wait_for_selector("[data-room='101']")


def room(page: Any, extension: str) -> Any:
    return page.locator(f"#matrix [data-room='{extension}']")


def test_receptionist_sees_the_hotel_filters_and_checks_a_room_in(browser: Any, site: Site) -> None:  # noqa: F811
    page = log_in(browser, site, RECEPTION)
    live(page)
    assert page.locator("#matrix [data-room]").count() == 6
    groups = page.locator("#matrix section.floor")
    assert [(g.get_attribute("data-building"), g.get_attribute("data-floor")) for g in groups.all()] == [
        ("Annex", "1"), ("Annex", "2"), ("Main", "1"), ("Main", "2"),
    ]  # fmt: skip
    screenshot(page, "panel-rooms")
    page.select_option("#f-floor", "2")
    assert sorted(r.get_attribute("data-room") for r in page.locator("#matrix [data-room]").all()) == ["201", "251"]
    page.select_option("#f-floor", "")

    # Check room 101 in, with an alarm, from its dialog.
    assert room(page, "101").get_attribute("data-occupied") == "false"
    room(page, "101").locator(".room-open").click()
    form = page.locator("#checkin-form")
    form.get_by_label("Guest (owner)").fill("Mario Rossi")
    form.get_by_label("Other guests (one per line)").fill("Lucia Rossi")
    form.get_by_label("Notes", exact=True).fill("allergic to feathers")
    form.get_by_label("New alarm at").fill("2031-06-01T07:15")
    screenshot(page, "room-checkin")
    page.locator("#checkin-form button[type=submit]").click()
    page.wait_for_selector("#stay-form:not([hidden])")
    page.keyboard.press("Escape")
    page.wait_for_selector("#matrix [data-room='101'][data-occupied='true']")
    card = room(page, "101")
    assert "occupied" in (card.get_attribute("class") or "")
    assert "Mario Rossi, Lucia Rossi" in card.inner_text()
    # Both read in one script: a live update re-rendering the matrix between
    # two reads detached 102's card once (CI), and its style read ''.
    red, green = page.evaluate(
        """() => ['101', '102'].map(r => getComputedStyle(
            document.querySelector(`#matrix [data-room='${r}']`)).borderTopColor)"""
    )
    assert red == "rgb(164, 22, 26)" and green == "rgb(27, 110, 52)"
    # Filter by a guest's name (any guest, any case).
    page.get_by_label("Guest or notes").fill("lucia")
    assert [r.get_attribute("data-room") for r in page.locator("#matrix [data-room]").all()] == ["101"]
    screenshot(page, "panel-filtered")
    # The store agrees with the page.
    stay = site.change(lambda s, p: stays.current_stay(s, p, "101"))
    assert (stay.owner, list(stay.guests), stay.notes) == ("Mario Rossi", ["Lucia Rossi"], "allergic to feathers")
    alarms = site.change(lambda s, p: wakeup.list_active(s, p, "101"))
    assert [a.due_at for a in alarms] == ["2031-06-01T07:15:00+00:00"]
    page.context.close()


def test_a_phones_cleaning_code_reaches_the_open_panel_and_the_button_answers(browser: Any, site: Site) -> None:  # noqa: F811
    page = log_in(browser, site, RECEPTION)
    live(page)
    assert room(page, "102").get_attribute("data-clean") == "true"
    report = site.dial("102", "*331")
    assert report.answered, report
    # The open panel turns, with no reload (how soon after a commit: ``kalliope-tel bench web``).
    page.wait_for_selector("#matrix [data-room='102'][data-clean='false']", timeout=5000)
    screenshot(page, "panel-dirty-from-phone")
    room(page, "102").locator("button.cleaning").click()
    page.wait_for_selector("#matrix [data-room='102'][data-clean='true']", timeout=5000)
    shown = kalliope("hotel", "rooms", "show", "102", "--json", env={"KALLIOPE_DATABASE_URL": site.database_url})
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["clean"] is True
    page.context.close()


def test_an_unanswered_alarm_alerts_every_panel_and_acknowledge_clears_them(browser: Any, site: Site) -> None:  # noqa: F811
    first = log_in(browser, site, RECEPTION)
    second = log_in(browser, site, ADMIN, lang="it")
    for page in (first, second):
        live(page)
    site.change(
        lambda s, p: stays.check_in(s, p, NO_ANSWER_ROOM, "Paolo Verdi", alarms=[utcnow() + timedelta(seconds=2)])
    )
    for page in (first, second):
        page.wait_for_selector(f"#alerts li[data-room='{NO_ANSWER_ROOM}']", timeout=40000)
    assert "Sveglie senza risposta" in second.inner_text("#alerts-title")
    screenshot(first, "panel-alert")
    screenshot(second, "panel-alert-it")
    first.locator(f"#alerts li[data-room='{NO_ANSWER_ROOM}'] button").click()
    second.wait_for_selector(f"#alerts li[data-room='{NO_ANSWER_ROOM}']", state="detached", timeout=5000)
    assert first.locator("#alerts li").count() == 0
    assert not site.change(lambda s, p: wakeup.alerts(s, p))
    for page in (first, second):
        page.context.close()


def test_fax_user_sends_a_pdf_and_downloads_a_received_fax(browser: Any, site: Site, tmp_path: Path) -> None:  # noqa: F811
    page = log_in(browser, site, FAX_USER)
    assert page.url.endswith("/pbx/default/fax")
    page.wait_for_selector("#register tbody tr[data-fax^='in-']")
    pdf = write_pdf(tmp_path / "offer.pdf", pages=2)
    page.select_option("#fx-instance", "office")
    page.get_by_label("Number").fill("601")
    page.set_input_files("#fx-documents", str(pdf))
    # Sent tomorrow: the page's time field, and no real-time call during the suite.
    tomorrow = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Send at (optional)").fill(tomorrow)
    page.locator("#send-form button[type=submit]").click()
    page.wait_for_selector("#register tbody tr[data-fax^='out-']", timeout=60000)
    out = page.locator("#register tbody tr[data-fax^='out-']").first
    assert out.get_attribute("data-state") == "queued" and "601" in out.inner_text()
    screenshot(page, "fax-register")
    with page.expect_download() as download:
        page.locator("#register tbody tr[data-fax^='in-'] a[data-kind=document]").first.click()
    saved = tmp_path / "received.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF") and saved.stat().st_size > 1000
    page.context.close()
    # A receptionist's session gets 403 on the fax API and on the fax page.
    reception = log_in(browser, site, RECEPTION)
    assert reception.request.get(site.url + "/api/v1/pbx/default/fax/register").status == 403
    assert reception.request.get(site.url + "/pbx/default/fax").status == 403
    screenshot(reception, "panel-receptionist")
    reception.context.close()


def test_a_meeting_saved_and_sent_from_the_calendar_page(browser: Any, site: Site) -> None:  # noqa: F811
    import icalendar

    page = log_in(browser, site, ADMIN)
    page.get_by_role("link", name="Meetings").click()
    page.wait_for_url(re.compile(r"/pbx/default/lam$"))
    page.wait_for_selector("#lam:not([hidden])")
    assert page.input_value("#lam-room") == "Blue"
    day = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%d")
    page.get_by_label("Meeting name").fill("Suppliers")
    page.get_by_label("Starts").fill(f"{day}T10:00")
    page.get_by_label("Ends").fill(f"{day}T11:30")
    page.get_by_label("Attendees (one per line").fill(f"{RECEPTION.name}\nguest@outside.example")
    page.get_by_label("Moderators (one per line)").fill(ADMIN.name)
    page.get_by_role("button", name="Save and Send").click()
    page.wait_for_selector("#meetings li[data-meeting]")
    assert "Suppliers" in page.inner_text("#meetings")
    screenshot(page, "lam-calendar")
    # The invitations leave through serve's job, with a calendar the icalendar library reads.
    site.mail.wait(lambda: len(site.mail.to("guest@outside.example")) == 1, 20, "the guest's invitation")
    message = site.mail.to("guest@outside.example")[0]
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    event = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")[0]
    assert str(event["summary"]) == "Suppliers"
    assert event.decoded("dtstart").strftime("%Y-%m-%d %H:%M") == f"{day} 10:00"
    assert {str(a) for a in event["attendee"]} == {"mailto:rita@hotel.test", "mailto:guest@outside.example",
                                                    "mailto:anna@hotel.test"}  # fmt: skip
    site.mail.wait(lambda: len(site.mail.to(ADMIN.email)) == 1, 20, "the moderator's invitation")
    assert "jwt=" in site.mail.to(ADMIN.email)[0].get_body(("plain",)).get_content()
    # A user who owns no room sees none.
    page.context.close()
    reception = log_in(browser, site, RECEPTION)
    reception.goto(site.url + "/pbx/default/lam")
    reception.wait_for_selector("#no-rooms:not([hidden])")
    assert reception.request.get(site.url + "/api/v1/pbx/default/lam/rooms/Blue/meetings").status == 404
    reception.context.close()


LABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter((e) => e.type !== 'hidden')
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map((e) => e.id || e.name || e.outerHTML.slice(0, 60))"""


def test_pages_on_a_tablet_with_labels_and_keyboard(browser: Any, site: Site) -> None:  # noqa: F811
    """Every field has a label (screen readers), the panel fits a tablet's
    width without scrolling sideways, and the keyboard reaches a room."""
    context = browser.new_context(locale="it-IT", viewport={"width": 800, "height": 1280}, has_touch=True)
    page = context.new_page()
    page.goto(site.url + "/login")
    assert page.evaluate(LABELLED) == []
    context.close()
    page = log_in(browser, site, ADMIN, lang="it")
    page.set_viewport_size({"width": 800, "height": 1280})
    live(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate(LABELLED) == []
    assert "Pannello receptionist" in page.title() or page.locator("h1").first.inner_text() == "Pannello receptionist"
    screenshot(page, "panel-tablet-it")
    # Tab from the search field into the matrix: the first room's button takes the focus.
    page.focus("#f-text")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.closest('[data-room]')?.dataset.room || document.activeElement.id")
    assert focused, "the keyboard reaches something after the search field"
    for path in ("/pbx/default/fax", "/pbx/default/lam"):
        page.goto(site.url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate(LABELLED) == [], path
    page.context.close()
