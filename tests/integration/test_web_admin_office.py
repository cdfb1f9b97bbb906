"""The office's described administration pages: fax settings, storages and
archival paths, fax instances with their users and templates, Mail2Fax boxes
with the test button (against the lab's Dovecot), meeting rooms, and call
cost profiles with their CSV out and back in. Through the API (refusals in
Italian naming their field, each other role and PBX refused) and in
Chromium on both stores, with screenshots."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kalliope_tel.billing import profiles
from kalliope_tel.db.engine import transaction
from kalliope_tel.fax import config as fax_config
from kalliope_tel.lab import dovecot as lab_dovecot
from kalliope_tel.lam import services as lam
from kalliope_tel.tenancy.services import get_pbx
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.mail2fax_support import dovecot, new_mailbox
from tests.web_node import RunningWeb, assert_refused, browser_login, seeded_web
from tests.web_support import ADMIN, FAX_USER, LAM_USER, OTHER_RECEPTION, RECEPTION

pytestmark = [pytest.mark.integration]
API = "/api/v1/pbx/default"
IT = {"accept-language": "it"}


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("web-admin-office")) as node:
        yield node


def test_fax_settings_paths_instances_users_and_templates(web: RunningWeb, tmp_path: Path) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    settings = client.put(f"{API}/fax/settings", json={"max_inbound": 4}, headers=h)
    assert settings.status_code == 200 and settings.json()["max_inbound"] == 4
    assert settings.json()["serial_number"] == "KPBX40299998"  # the others stay
    # Archival: a relative directory is refused on its field, in Italian; an absolute one is added.
    relative = client.post(f"{API}/fax/archive-paths", json={"directory": "faxes"}, headers=h | IT)
    assert relative.status_code == 400 and relative.json()["params"]["setting"] == "directory"
    assert "non è un percorso assoluto" in relative.json()["detail"]
    added = client.post(f"{API}/fax/archive-paths", json={"directory": str(tmp_path)}, headers=h)
    assert added.status_code == 201 and added.json()["position"] == 1
    assert client.patch(f"{API}/fax/archive-paths/1", json={"enabled": False}, headers=h).json()["enabled"] is False
    assert client.delete(f"{API}/fax/archive-paths/1", headers=h).status_code == 204
    # A storage's key must be readable by the service only.
    key, known = tmp_path / "id", tmp_path / "known_hosts"
    key.write_text("key")
    key.chmod(0o644)
    known.write_text("")
    storage = {"name": "nas", "host": "10.0.0.5", "username": "fax", "key_file": str(key), "known_hosts": str(known)}
    loose = client.post(f"{API}/fax/storages", json=storage, headers=h | IT)
    assert loose.status_code == 400 and loose.json()["code"] == "faxconf.key_readable", loose.text
    key.chmod(0o600)
    assert client.post(f"{API}/fax/storages", json=storage, headers=h).status_code == 201
    assert client.delete(f"{API}/fax/storages/nas", headers=h).status_code == 204
    # A template; an instance on it inherits what it does not set.
    made = client.post(f"{API}/fax/templates", json={"name": "slow", "max_rate": 9600, "modem": ["v29", "v27ter"]},
                       headers=h)  # fmt: skip
    assert made.status_code == 201 and made.json()["modem"] == ["v29", "v27ter"], made.text
    inst = client.post(f"{API}/fax/instance-config", json={"name": "annex", "selection": "701", "template": "slow",
                                                     "outbound_class": "faxnet"}, headers=h)  # fmt: skip
    assert inst.status_code == 201, inst.text
    with transaction(web.container.sessions, read_only=True) as s:
        row = fax_config.get_instance(s, get_pbx(s), "annex")
        assert (row.max_rate, fax_config.effective(s, row).max_rate) == (None, 9600)
    taken = client.post(f"{API}/fax/instance-config", json={"name": "third", "selection": "701"}, headers=h | IT)
    assert taken.status_code == 400 and taken.json()["params"]["setting"] == "selection"
    assert "appartiene a un'altra istanza fax" in taken.json()["detail"]
    pin = client.patch(f"{API}/fax/instance-config/annex", json={"mail2fax_pin": "12"}, headers=h | IT)
    assert pin.status_code == 400 and pin.json()["code"] == "faxconf.pin"
    # Users on instances.
    allowed = client.post(f"{API}/fax/permissions", json={"instance": "annex", "user": "fabio", "permission": "send"},
                          headers=h)  # fmt: skip
    assert allowed.status_code == 201
    rows = {r["id"]: r["permission"] for r in client.get(f"{API}/fax/permissions").json()}
    assert rows == {"office:fabio": "both", "annex:fabio": "send"}
    assert (
        client.patch(f"{API}/fax/permissions/annex:fabio", json={"permission": "receive"}, headers=h).status_code == 200
    )
    assert client.delete(f"{API}/fax/permissions/annex:fabio", headers=h).status_code == 204
    assert client.delete(f"{API}/fax/instance-config/annex", headers=h).status_code == 204


@pytest.mark.skipif(lab_dovecot.available() is not None, reason=str(lab_dovecot.available()))
def test_a_mail2fax_box_is_added_tested_against_dovecot_and_refused_when_the_login_fails(
    web: RunningWeb, tmp_path: Path
) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    with dovecot(tmp_path / "dovecot") as lab:
        password = new_mailbox(lab, "faxes@hotel.test")
        box = {"name": "faxes", "address": "faxes@hotel.test", "server": "127.0.0.1", "port": lab.imaps_port,
               "password": password, "ca_file": str(lab.cert)}  # fmt: skip
        made = client.post(f"{API}/mail2fax/boxes", json=box, headers=h)
        assert made.status_code == 201 and made.json()["password"] == "", made.text  # never shown
        assert password not in client.get(f"{API}/mail2fax/boxes").text
        tested = client.post(f"{API}/mail2fax/boxes/faxes/test", headers=h | IT)
        assert tested.status_code == 200 and tested.json()["ok"] is True, tested.text
        assert "accesso riuscito" in tested.json()["message"] and tested.json()["messages"] == 0
        # A blank password keeps the one set; a wrong one fails the test, with why.
        assert client.patch(f"{API}/mail2fax/boxes/faxes", json={"password": "", "poll_seconds": 30},
                            headers=h).status_code == 200  # fmt: skip
        assert client.post(f"{API}/mail2fax/boxes/faxes/test", headers=h).status_code == 200
        client.patch(f"{API}/mail2fax/boxes/faxes", json={"password": "wrong-" + password}, headers=h)
        failed = client.post(f"{API}/mail2fax/boxes/faxes/test", headers=h | IT)
        assert failed.status_code == 400 and failed.json()["code"] == "box.test_failed", failed.text
        assert "l'accesso non è riuscito" in failed.json()["detail"]
        health = client.get(f"{API}/mail2fax/boxes").json()[0]
        assert "authentication" in health["last_error"].lower() or "login" in health["last_error"].lower(), health
    bad = client.post(f"{API}/mail2fax/boxes", json=box | {"name": "again"}, headers=h | IT)
    assert bad.status_code == 400 and bad.json()["params"]["field"] == "address"
    assert client.delete(f"{API}/mail2fax/boxes/faxes", headers=h).status_code == 204


def test_meeting_rooms_licences_and_owners(web: RunningWeb) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    assert client.put(f"{API}/lam/settings", json={"licences": 1, "dial_in": "800"}, headers=h).status_code == 200
    room = client.post(f"{API}/lam/room-config", json={"name": "Board", "owners": ["luca"]}, headers=h)
    assert room.status_code == 201 and room.json()["owners"] == ["luca"], room.text
    full = client.post(f"{API}/lam/room-config", json={"name": "Second"}, headers=h | IT)
    assert full.status_code == 400 and full.json()["code"] == "lam.no_licence"
    lower = client.put(f"{API}/lam/settings", json={"licences": 0}, headers=h | IT)
    assert lower.status_code == 400 and lower.json()["code"] == "lam.licences_in_use"
    changed = client.patch(f"{API}/lam/room-config/Board", json={"owners": ["luca", "anna"]}, headers=h)
    assert changed.json()["owners"] == ["anna", "luca"]
    with transaction(web.container.sessions, read_only=True) as s:
        assert lam.get_settings(s, get_pbx(s)).dial_in_number == "800"
    assert client.delete(f"{API}/lam/room-config/Board", headers=h).status_code == 204


def test_cost_profiles_rules_and_their_csv_round_trip(web: RunningWeb) -> None:
    client, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    assert (
        client.post(f"{API}/billing/profiles", json={"name": "carrier", "line": "lab-trunk"}, headers=h).status_code
        == 201
    )
    taken = client.post(f"{API}/billing/profiles", json={"name": "second", "line": "lab-trunk"}, headers=h | IT)
    assert taken.status_code == 400 and taken.json()["params"]["field"] == "line"
    assert "tariffa già la linea" in taken.json()["detail"]
    rule = {"profile": "carrier", "match": "prefix", "digits": "06", "per_minute": "0.02"}
    assert client.post(f"{API}/billing/rules", json=rule, headers=h).status_code == 201
    twice = client.post(f"{API}/billing/rules", json=rule, headers=h | IT)
    assert twice.status_code == 400 and "ha già una regola per prefix 06" in twice.json()["detail"], twice.text
    exported = client.get(f"{API}/billing/profiles/carrier/rules.csv")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    text = exported.content.decode("utf-8-sig")
    assert text.splitlines()[1].startswith("prefix,06,0.0000,0.0200")
    # Back in with a bad line: refused naming the line, nothing written.
    broken = text + "exact,0612345,0,abc,60,60,0,EUR,\n"
    refused = client.post(f"{API}/billing/profiles/carrier/rules?replace=true", files={"file": ("r.csv", broken)},
                          headers=h | IT)  # fmt: skip
    assert refused.status_code == 400 and refused.json()["detail"].startswith("CSV riga 3:"), refused.text
    assert "non è un numero" in refused.json()["detail"]
    with transaction(web.container.sessions, read_only=True) as s:
        assert len(profiles.rules_of(s, profiles.get_profile(s, get_pbx(s), "carrier"))) == 1
    fixed = text + "exact,0612345,0,0.5,60,60,0,EUR,\n"
    done = client.post(f"{API}/billing/profiles/carrier/rules?replace=true", files={"file": ("r.csv", fixed)},
                       headers=h)  # fmt: skip
    assert done.status_code == 200 and done.json()["imported"] == 2, done.text
    assert {r["id"] for r in client.get(f"{API}/billing/rules").json()} == {
        "carrier|prefix|06",
        "carrier|exact|0612345",
    }
    assert client.delete(f"{API}/billing/rules/carrier|exact|0612345", headers=h).status_code == 204
    assert client.delete(f"{API}/billing/profiles/carrier", headers=h).status_code == 204


ROUTES = [
    ("GET", "/fax/settings"), ("PUT", "/fax/settings"), ("GET", "/fax/storages"), ("POST", "/fax/storages"),
    ("DELETE", "/fax/storages/x"), ("GET", "/fax/archive-paths"), ("POST", "/fax/archive-paths"),
    ("PATCH", "/fax/archive-paths/1"), ("DELETE", "/fax/archive-paths/1"), ("GET", "/fax/instance-config"),
    ("POST", "/fax/instance-config"), ("PATCH", "/fax/instance-config/office"),
    ("DELETE", "/fax/instance-config/office"),
    ("GET", "/fax/permissions"), ("POST", "/fax/permissions"), ("PATCH", "/fax/permissions/office:fabio"),
    ("DELETE", "/fax/permissions/office:fabio"), ("GET", "/fax/templates"), ("POST", "/fax/templates"),
    ("PATCH", "/fax/templates/x"), ("GET", "/mail2fax/boxes"), ("POST", "/mail2fax/boxes"),
    ("PATCH", "/mail2fax/boxes/x"), ("DELETE", "/mail2fax/boxes/x"), ("POST", "/mail2fax/boxes/x/test"),
    ("GET", "/lam/settings"), ("PUT", "/lam/settings"), ("GET", "/lam/room-config"), ("POST", "/lam/room-config"),
    ("PATCH", "/lam/room-config/x"), ("DELETE", "/lam/room-config/x"), ("GET", "/billing/profiles"),
    ("POST", "/billing/profiles"), ("DELETE", "/billing/profiles/x"), ("GET", "/billing/profiles/x/rules.csv"),
    ("POST", "/billing/profiles/x/rules"), ("GET", "/billing/rules"), ("POST", "/billing/rules"),
    ("DELETE", "/billing/rules/x"),
]  # fmt: skip
PAGES = ("admin/fax", "admin/fax-instances", "admin/mail2fax", "admin/lam", "admin/billing")


@pytest.mark.parametrize("user", [RECEPTION, FAX_USER, LAM_USER, OTHER_RECEPTION], ids=lambda u: u.name)
def test_nobody_else_reads_or_changes_them(web: RunningWeb, user: Any) -> None:
    assert_refused(web, user, ROUTES, PAGES)


def test_the_office_pages_in_the_browser(browser: Any, web: RunningWeb) -> None:  # noqa: F811
    page = browser_login(browser, web, ADMIN.email, lang="it")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(web.url + "/pbx/default/admin/fax-instances")
    # An instance added from the form; its edit dialog sends only what changed.
    add = page.locator("[data-section=instances] details.add")
    add.locator("summary").click()
    add.get_by_label("Nome", exact=True).fill("reception")
    add.get_by_label("Selezione (interno)").fill("702")
    add.get_by_label("Classe di uscita").select_option("faxnet")
    add.locator("button[type=submit]").click()
    page.locator("#instances tr[data-key=reception]").wait_for()
    page.locator("#instances tr[data-key=reception] button[data-action=edit]").click()
    dialog = page.locator("#record-dialog")
    dialog.get_by_label("PIN Mail2Fax").fill("12")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("#record-dialog .field-error")
    assert "da 4 a 16 cifre" in dialog.locator(".field-error").inner_text()
    screenshot(page, "admin-fax-instance-dialog-refused-it")
    dialog.get_by_label("PIN Mail2Fax").fill("4321")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("#record-dialog", state="hidden")
    with transaction(web.container.sessions, read_only=True) as s:
        row = fax_config.get_instance(s, get_pbx(s), "reception")
        assert row.mail2fax_pin == "4321" and row.max_rate is None  # the rest still inherited
    screenshot(page, "admin-fax-instances-it")
    page.locator("#instances tr[data-key=reception] button[data-action=remove]").click()
    page.locator("#instances tr[data-key=reception]").wait_for(state="detached")
    # Meeting rooms: owners chosen with check boxes.
    page.goto(web.url + "/pbx/default/admin/lam")
    # The form is filled from the API once the page is up: type after that.
    page.wait_for_function("() => document.querySelector('#lam-settings [name=licences]').value !== ''")
    page.locator("#lam-settings [name=licences]").fill("3")
    page.locator("#lam-settings button[type=submit]").click()
    page.wait_for_selector("#toast.show:not(.error)")
    add = page.locator("[data-section=lam-rooms] details.add")
    add.locator("summary").click()
    add.get_by_label("Sala", exact=True).fill("Garden")
    add.get_by_label("luca").check()
    add.locator("button[type=submit]").click()
    toast = "document.getElementById('toast')"
    page.wait_for_function(f"() => {toast}.textContent.includes('Garden') || {toast}.classList.contains('error')")
    assert "Garden" in page.locator("#toast").inner_text(), page.locator("#toast").inner_text()  # added, not refused
    page.locator("#lam-rooms tr", has_text="Garden").wait_for()
    assert "luca" in page.locator("#lam-rooms tr", has_text="Garden").inner_text()
    screenshot(page, "admin-lam-it")
    # Cost profiles on a tablet held upright; the CSV downloads.
    page.set_viewport_size({"width": 800, "height": 1100})
    page.goto(web.url + "/pbx/default/admin/billing")
    add = page.locator("[data-section=profiles] details.add")
    add.locator("summary").click()
    add.get_by_label("Nome", exact=True).fill("default")
    add.get_by_label("Valuta").fill("EUR")
    add.locator("button[type=submit]").click()
    page.locator("#profiles tr[data-key=default]").wait_for()
    with page.expect_download() as download:
        page.locator("#profiles tr[data-key=default] button[data-action='rules.csv']").click()
    assert re.fullmatch(r"default-rules\.csv", download.value.suggested_filename)
    screenshot(page, "admin-billing-800x1100-it")
    # Fax settings: an archival path that is not absolute, refused under its field.
    page.goto(f"{web.url}/pbx/default/admin/fax")
    add = page.locator("[data-section=paths] details.add")
    add.locator("summary").click()
    add.get_by_label("Cartella").fill("faxes/in")
    add.locator("button[type=submit]").click()
    page.wait_for_selector("#paths-add .field-error")
    assert "non è un percorso assoluto" in add.locator(".field-error").inner_text()
    screenshot(page, "admin-fax-settings-refused-800x1100-it")
    # Mail2Fax: a box with an address that is not one, refused under its field.
    page.goto(f"{web.url}/pbx/default/admin/mail2fax")
    add = page.locator("[data-section=boxes] details.add")
    add.locator("summary").click()
    add.get_by_label("Nome", exact=True).fill("requests")
    add.get_by_label("Indirizzo e-mail").fill("not-an-address")
    add.get_by_label("Server", exact=True).fill("127.0.0.1")
    add.get_by_label("Password", exact=True).fill("a password")
    add.evaluate("(form) => form.querySelector('form').noValidate = true")  # the server's refusal, not the browser's
    add.locator("button[type=submit]").click()
    page.wait_for_selector("#boxes-add .field-error")
    assert "indirizzo e-mail" in add.locator(".field-error").inner_text()
    screenshot(page, "admin-mail2fax-refused-800x1100-it")
    page.context.close()
