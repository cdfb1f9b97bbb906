"""A PBX's users administered in the browser: the API (add, change, remove,
refusals in the reader's language, who may call it) and the page in
Debian's Chromium (add, edit roles, remove, an Italian refusal), with
screenshots kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.web_node import RunningWeb, browser_login, seeded_web
from tests.web_support import ADMIN, FAX_USER, LAM_USER, OTHER_RECEPTION, RECEPTION

pytestmark = [pytest.mark.integration]
API = "/api/v1/pbx/default/users"
IT = {"accept-language": "it"}


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("web-users")) as node:
        yield node


def test_an_administrator_adds_changes_and_removes_a_user(web: RunningWeb) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    added = client.post(API, json={"name": "giulia", "email": "giulia@hotel.test", "full_name": "Giulia B",
                                   "roles": ["receptionist"]}, headers=h)  # fmt: skip
    assert added.status_code == 201, added.text
    shown = {k: v for k, v in added.json().items() if k != "created_at"}
    assert shown == {"name": "giulia", "email": "giulia@hotel.test", "full_name": "Giulia B",
                     "roles": ["receptionist"], "has_password": False, "pgp": False}  # fmt: skip
    again = client.post(API, json={"name": "giulia", "email": "g2@hotel.test"}, headers=h | IT)
    assert again.status_code == 400 and again.json()["detail"] == "l'utente 'giulia' esiste già nel PBX 'default'"
    taken = client.post(API, json={"name": "g2", "email": RECEPTION.email}, headers=h)
    assert taken.status_code == 400 and taken.json()["code"] == "user.email_taken"
    bad = client.post(API, json={"name": "g3", "email": "not an address"}, headers=h | IT)
    assert bad.status_code == 400 and bad.json()["code"] == "user.bad_email"
    invalid = client.post(API, json={"name": "no spaces please", "email": "x@hotel.test"}, headers=h | IT)
    assert invalid.status_code == 422 and invalid.json()["fields"] == {"name": "non è nella forma prevista"}
    changed = client.patch(f"{API}/giulia", json={"roles": ["fax", "receptionist"], "full_name": "Giulia Bianchi"},
                           headers=h)  # fmt: skip
    assert changed.status_code == 200 and changed.json()["roles"] == ["fax", "receptionist"]
    names = [u["name"] for u in client.get(API).json()]
    assert "giulia" in names and "otto" not in names  # the other PBX's users are not listed
    assert client.delete(f"{API}/giulia", headers=h).json() == {"removed": "giulia"}
    assert "giulia" not in [u["name"] for u in client.get(API).json()]
    # Each change is in the log of the PBX's company, with who, from where, and what changed.
    from sqlalchemy import select

    from kalliope_tel.db.engine import transaction
    from kalliope_tel.oplog.models import LogEntry

    with transaction(web.container.sessions, read_only=True) as session:
        entries = session.scalars(select(LogEntry).where(LogEntry.object_label == "giulia (default)")
                                  .order_by(LogEntry.id)).all()  # fmt: skip
        assert [e.operation for e in entries] == ["log.pbx_user_added", "log.pbx_user_updated",
                                                  "log.pbx_user_removed"]  # fmt: skip
        assert {(e.actor, e.via, e.ip) for e in entries} == {(ADMIN.email, "api", "127.0.0.1")}
        assert entries[1].before == {"full_name": "Giulia B", "roles": ["receptionist"]}
        assert entries[1].after == {"full_name": "Giulia Bianchi", "roles": ["fax", "receptionist"]}


def test_an_administrator_keeps_their_own_access(web: RunningWeb) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    own = client.patch(f"{API}/{ADMIN.name}", json={"roles": ["receptionist"]}, headers=h | IT)
    assert own.status_code == 400 and own.json()["code"] == "user.keep_own_admin"
    assert client.delete(f"{API}/{ADMIN.name}", headers=h).json()["code"] == "user.keep_self"
    assert client.get("/api/v1/me").json()["roles"] == ["admin"]


@pytest.mark.parametrize("user", [RECEPTION, FAX_USER, LAM_USER, OTHER_RECEPTION], ids=lambda u: u.name)
def test_no_one_else_reads_or_changes_the_users(web: RunningWeb, user: Any) -> None:
    client, csrf = web.login(user)
    h = {"x-csrf-token": csrf}
    assert client.get(API).status_code == 403
    assert client.post(API, json={"name": "x", "email": "x@hotel.test"}, headers=h).status_code == 403
    assert client.delete(f"{API}/{RECEPTION.name}", headers=h).status_code == 403
    assert client.get("/pbx/default/admin/users").status_code == 403
    assert web.client().get(API).status_code == 401


def test_the_users_page_adds_edits_and_removes_in_chromium(browser: Any, web: RunningWeb, tmp_path: Path) -> None:  # noqa: F811
    page = browser_login(browser, web, ADMIN.email, lang="it")
    page.get_by_role("link", name="Amministrazione").click()
    page.get_by_role("link", name="Utenti", exact=True).first.click()
    page.wait_for_selector("#users tbody tr[data-key='rita']")
    page.fill("#u-name", "marco")
    page.fill("#u-email", "marco@hotel.test")
    page.fill("#u-full", "Marco Neri")
    page.locator("#user-form input[name=roles][value=fax]").check()
    page.locator("#user-form button[type=submit]").click()
    row = page.locator("#users tbody tr[data-key='marco']")
    row.wait_for()
    assert "Fax" in row.inner_text() and "Marco Neri" in row.inner_text()
    # The same name again: refused, in Italian, and nothing else changes.
    page.fill("#u-name", "marco")
    page.fill("#u-email", "marco2@hotel.test")
    page.locator("#user-form button[type=submit]").click()
    page.wait_for_selector("#toast.show.error")
    assert "esiste già" in page.inner_text("#toast")
    screenshot(page, "admin-users-it")
    # Edit: a role more, through the dialog.
    row.locator("button[data-action=edit]").click()
    page.locator("#user-edit input[name=roles][value=receptionist]").check()
    page.locator("#user-edit button[type=submit]").click()
    page.wait_for_selector("#users tbody tr[data-key='marco'] >> text=Receptionist")
    # Sorted by e-mail, filtered, and removed.
    page.fill("#users-filter", "marco")
    assert page.locator("#users tbody tr").count() == 1
    page.once("dialog", lambda d: d.accept())
    row.locator("button[data-action=remove]").click()
    page.wait_for_selector("#users tbody tr[data-key='marco']", state="detached")
    assert page.locator("#users-empty").is_visible()
    page.context.close()
