"""The room rack of an 80-room hotel in Debian's Chromium: every room on one
1280x800 screen without scrolling (asserted from the tiles' positions), the
alerts in view on a tablet, search by number, name, guest or notes with an
empty state, dirty shown on free and occupied rooms alike, check-out making
a room dirty, the stay dialog editing owner, guests, notes and class, and a
keyboard path. Screenshots at 1280x800 and 800x1100 are kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import cleaning, services, stays
from kalliope_tel.hotel.models import CleaningSource
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.users import services as users
from kalliope_tel.users.models import Role
from kalliope_tel.wakeup import services as wakeup
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.web_node import RunningWeb, browser_login, seeded_web
from tests.web_support import PASSWORD

pytestmark = [pytest.mark.integration]
RECEPTION = "rack@hotel.test"
SURNAMES = ["Rossi", "Bianchi", "Verdi", "Neri", "Russo", "Ferrari", "Esposito", "Romano", "Colombo", "Ricci"]


def _rooms() -> list[tuple[str, str, str]]:
    """(extension, building, floor): 4 floors of 20 rooms, in two buildings."""
    return [(f"{floor}{n:02d}", "Main" if floor <= 2 else "Garden", str(floor)) for floor in range(1, 5)
            for n in range(1, 21)]  # fmt: skip


def _seed(s: Any) -> None:
    """80 rooms, half occupied, a third dirty, and the receptionist."""
    pbx = get_pbx(s)
    services.ensure_default_classes(s, pbx, "kt-lab-trunk")
    services.create_template(s, pbx, "std")
    for n, (extension, building, floor) in enumerate(_rooms()):
        # A few rooms have names of their own; the rest would only repeat the number.
        name = "Suite Vesuvio" if extension == "420" else f"Room {extension}"
        services.create_room(s, pbx, extension, name, "std", organization=building, organizational_unit=floor)
        if n % 2 == 0:
            guest = f"Mario {SURNAMES[n % 10]}"
            stays.check_in(s, pbx, extension, guest, notes="late arrival" if n == 4 else "",
                           alarms=[utcnow() + timedelta(days=1)] if n % 4 == 0 else None)  # fmt: skip
        if n % 3 == 0:
            cleaning.set_cleaning(s, pbx, extension, False, CleaningSource.OPERATOR)
    wakeup.update_settings(s, pbx, name="Wake-up", number="900", message="beep")
    users.add_user(s, pbx, "rack", RECEPTION, "Rita Rack")
    users.set_password(s, pbx, "rack", PASSWORD)
    users.set_roles(s, pbx, "rack", {Role.RECEPTIONIST})


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("rack"), seed=_seed) as node:
        yield node


def _open(chromium: Any, web: RunningWeb, width: int, height: int, lang: str = "en") -> Any:
    page = browser_login(chromium, web, RECEPTION, lang=lang, width=width, height=height)
    page.wait_for_selector("#live[data-state=live]", timeout=10000)
    page.locator("#matrix article.room").nth(79).wait_for()  # (wait_for_function evaluates strings: the CSP refuses)
    return page


def _box(locator: Any) -> dict[str, float]:
    """An element's box; the live feed may be redrawing the rack just then
    (the element replaced): measured again, briefly."""
    for _ in range(30):
        box = locator.bounding_box()
        if box is not None:
            return box  # type: ignore[no-any-return]
        locator.page.wait_for_timeout(100)
    raise AssertionError(f"{locator} has no box")


def _boxes(page: Any) -> list[dict[str, float]]:
    return page.evaluate(
        """() => [...document.querySelectorAll('#matrix article.room')].map((el) => {
            const r = el.getBoundingClientRect();
            return {room: el.dataset.room, top: r.top, bottom: r.bottom, left: r.left, right: r.right, h: r.height};
        })"""
    )


def test_eighty_rooms_fit_one_1280x800_screen_readable_at_arms_length(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    page = _open(browser, web, 1280, 800)
    boxes = _boxes(page)
    assert len(boxes) == 80
    off_screen = [b["room"] for b in boxes if b["bottom"] > 800 or b["right"] > 1280 or b["top"] < 0]
    lowest = max(b["bottom"] for b in boxes)
    screenshot(page, "rack-80-rooms-1280x800")
    assert off_screen == [], f"{len(off_screen)} rooms need a scroll (lowest edge at {lowest:.0f} px): {off_screen[:5]}"
    assert page.evaluate("document.scrollingElement.scrollHeight") <= 800
    # Readable at arm's length: the room number at least 20 px, tiles at least 44 px tall (a finger).
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#matrix .room .number')).fontSize)")
    assert size >= 20 and min(b["h"] for b in boxes) >= 44
    # State by word and colour; dirty on free and occupied rooms alike; a name only where it says more.
    occupied_dirty = page.locator("#matrix article.room.occupied.dirty .badge.dirty")
    free_dirty = page.locator("#matrix article.room.free.dirty .badge.dirty")
    assert occupied_dirty.count() > 0 and free_dirty.count() > 0
    # ...and the word is inside its tile, not cut off.
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('#matrix .room .badge.dirty')].filter((b) => {
            const line = b.parentElement.getBoundingClientRect(), r = b.getBoundingClientRect();
            return r.right > line.right + 0.5 || r.width < 10;
        }).map((b) => b.closest('.room').dataset.room)"""
    )
    assert clipped == [], f"the dirty badge is cut off in rooms {clipped}"
    assert page.locator("#matrix [data-room='101'] .state").inner_text().lower() == "occupied"
    assert page.locator("#matrix [data-room='102'] .state").inner_text().lower() == "free"
    assert page.locator("#matrix [data-room='101'] .name").count() == 0
    assert page.locator("#matrix [data-room='420'] .name").inner_text() == "Suite Vesuvio"
    assert page.locator("#matrix [data-room='101'] .badge.class-restricted").count() == 1
    # The cleaning button is named by what it will do (a broom on a dirty room), not by the state.
    button = page.locator("#matrix [data-room='101'] button.cleaning")
    assert (button.get_attribute("aria-label"), button.get_attribute("title")) == ("101: Mark clean", "Mark clean")
    clean = page.locator("#matrix [data-room='102'] button.cleaning")
    assert clean.get_attribute("title") == "Mark dirty"
    screenshot(page, "rack-80-rooms-1280x800")
    page.context.close()


def test_a_live_redraw_keeps_the_keyboards_place(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    """A change arriving on the live feed redraws the rack; the tile's control that had the keyboard
    focus has it again in the new tiles (it fell to the page, and Enter then opened nothing)."""
    page = _open(browser, web, 1280, 800)
    page.locator("#matrix [data-room='301'] .room-open").focus()
    with transaction(web.container.sessions) as s:
        room = services.get_room(s, get_pbx(s), "302")
        now_clean = not room.clean
        cleaning.set_cleaning(s, get_pbx(s), "302", now_clean, CleaningSource.OPERATOR)
    page.locator(f"#matrix [data-room='302'][data-clean='{str(now_clean).lower()}']").wait_for()
    focused = page.evaluate(
        "() => [document.activeElement.closest('[data-room]')?.dataset.room, document.activeElement.className]"
    )
    assert focused == ["301", "room-open"]
    page.keyboard.press("Enter")
    page.wait_for_selector("#room-dialog[open]")
    page.context.close()


def test_on_a_tablet_the_alerts_stay_in_view(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    page = _open(browser, web, 800, 1100, lang="it")
    alerts = _box(page.locator("aside.alerts"))
    first_room = _box(page.locator("#matrix article.room").first)
    assert alerts["y"] < first_room["y"], "the alerts fall below the rooms"
    page.mouse.wheel(0, 2000)
    page.wait_for_timeout(300)
    assert page.locator("aside.alerts").bounding_box()["y"] >= -1  # type: ignore[index]  # sticky: still in view
    screenshot(page, "rack-tablet-800x1100-it")
    page.context.close()


def test_search_by_number_name_guest_and_notes_with_an_empty_state(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    page = _open(browser, web, 1280, 800)
    shown = lambda: sorted(r.get_attribute("data-room") for r in page.locator("#matrix article.room").all())  # noqa: E731
    page.keyboard.press("/")  # the keyboard path to the search
    assert page.evaluate("document.activeElement.id") == "f-text"
    page.keyboard.type("420")
    assert shown() == ["420"]
    page.fill("#f-text", "vesuvio")
    assert shown() == ["420"]
    page.fill("#f-text", "late arr")
    assert shown() == ["105"]
    page.fill("#f-text", "Rossi")
    assert shown() and all(page.locator(f"#matrix [data-room='{r}'] .guests").inner_text().endswith("Rossi")
                           for r in shown())  # fmt: skip
    page.fill("#f-text", "nobody at all")
    assert shown() == [] and page.locator("#matrix .rack-empty").inner_text() == "No room matches these filters."
    page.keyboard.press("Escape")
    assert len(shown()) == 80
    page.context.close()


def test_the_stay_dialog_edits_owner_guests_notes_and_class_and_check_out_leaves_it_dirty(
    browser: Any,  # noqa: F811
    web: RunningWeb,
) -> None:
    page = _open(browser, web, 1280, 800)
    # Keyboard: the room's tile is a button; Enter opens its dialog.
    page.locator("#matrix [data-room='301'] .room-open").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#room-dialog[open] #stay-form:not([hidden])")
    page.fill("#st-owner", "Giulia Verdi")
    page.fill("#st-guests", "Marco Verdi\nAnna Verdi")
    page.fill("#st-notes", "anniversary")
    page.select_option("#st-class", "standard")
    page.locator("#stay-form button[type=submit]").click()
    page.wait_for_selector("#matrix [data-room='301'] .badge.class-standard")
    assert (
        page.locator("#matrix [data-room='301'] .guests").inner_text().endswith("Giulia Verdi, Marco Verdi, Anna Verdi")
    )
    with transaction(web.container.sessions) as s:
        stay = stays.current_stay(s, get_pbx(s), "301")
        assert (stay.owner, list(stay.guests), stay.notes, stay.outbound.value) == (
            "Giulia Verdi", ["Marco Verdi", "Anna Verdi"], "anniversary", "standard",
        )  # fmt: skip
    screenshot(page, "rack-stay-dialog")
    # A clean occupied room, checked out: free and dirty.
    with transaction(web.container.sessions) as s:
        cleaning.set_cleaning(s, get_pbx(s), "301", True, CleaningSource.OPERATOR)
    page.wait_for_selector("#matrix [data-room='301'][data-clean='true']")
    page.once("dialog", lambda d: d.accept())
    page.locator("#checkout").click()
    page.wait_for_selector("#matrix [data-room='301'][data-occupied='false'][data-clean='false']")
    assert page.locator("#matrix [data-room='301'] .badge.dirty").count() == 1
    page.context.close()


def test_check_out_keeps_a_room_clean_where_the_hotel_says_so(web: RunningWeb, tmp_path: Path) -> None:
    with transaction(web.container.sessions) as s:
        pbx = get_pbx(s)
        services.update_settings(s, pbx, checkout_dirty=False)
        cleaning.set_cleaning(s, pbx, "303", True, CleaningSource.OPERATOR)
        stays.check_out(s, pbx, "303")
        assert services.get_room(s, pbx, "303").clean is True
        services.update_settings(s, pbx, checkout_dirty=True)
