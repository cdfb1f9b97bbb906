"""SIP trunks, numbers and groups through the Manager's API, on both
stores: a customer's administrator makes a trunk (its password never comes
back), a number on it and a block on a new trunk from the same request,
lists, searches, sorts and exports them, imports a CSV (all or nothing,
lines named, in the reader's language); deleting a trunk with numbers is
refused with them. Who may do what: another customer sees none of it (404
as for a missing one), the read-only role changes nothing, only the
partner's members manage groups, and everything is in the Manager log."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.orm import Session

from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import ManagerRole
from kalliope_tel.omnia import manager
from kalliope_tel.oplog.services import Actor
from kalliope_tel.tenancy import companies
from kalliope_tel.trunks import services as trunks
from tests.console_support import Factors
from tests.integration.test_manager_api import login
from tests.web_node import RunningWeb, seeded_web
from tests.web_support import PASSWORD

pytestmark = [pytest.mark.integration]
API = "/api/v1/manager"
IT = {"accept-language": "it"}
PARTNER, PARTNER_RO, ALFA, BETA = "tp@partner.test", "tr@partner.test", "ta@alfa.test", "tb@beta.test"


def seed(session: Session) -> None:
    partner = companies.installation_partner(session)
    alfa = companies.create_customer(session, partner, "Alfa Srl", code="ALFA")
    beta = companies.create_customer(session, partner, "Beta Spa", code="BETA")
    for email, company, role in ((PARTNER, partner, ManagerRole.ADMIN), (PARTNER_RO, partner, ManagerRole.READ_ONLY),
                                 (ALFA, alfa, ManagerRole.ADMIN), (BETA, beta, ManagerRole.ADMIN)):  # fmt: skip
        account = accounts.create_account(session, email, email.split("@")[0].upper(), "Test")
        accounts.set_password(session, account, PASSWORD)
        accounts.join_company(session, account, company, manager=role, manage_customers=company is partner)
    actor = Actor("seed", "cli")
    manager.create_pbx(session, actor, alfa, "alfapbx", name="Alfa")
    manager.create_pbx(session, actor, beta, "betapbx", name="Beta")
    trunks.save_carrier(session, actor, "LabTel", ["sip.example.net", "sbc.example.net:5080"], "udp", "alaw", True)


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("trunks"), seed=seed) as node:
        yield node


@pytest.fixture(scope="module")
def factors() -> Factors:
    return Factors()


def test_trunks_and_numbers_through_the_api(web: RunningWeb, factors: Factors) -> None:
    alfa = login(web, ALFA, factors)
    assert [c["name"] for c in alfa.get(API + "/carriers").json()] == ["LabTel"]
    made = alfa.post(API + "/trunks", json={"description": "Main", "carrier": "LabTel", "username": "alfa1",
                                            "password": "Secret-pass-1"})  # fmt: skip
    assert made.status_code == 201, made.text
    trunk = made.json()
    assert trunk["endpoint"] == "sip.example.net" and trunk["password_set"] and "Secret-pass-1" not in made.text
    listed = alfa.get(API + "/trunks").json()
    assert [(t["description"], t["registration"]) for t in listed] == [("Main", "unknown")]  # no Asterisk to ask
    assert "Secret-pass-1" not in alfa.get(API + "/trunks").text
    numbers = API + "/pbxs/alfapbx/numbers"
    assert alfa.post(numbers, json={"number": "0612345600", "type": 2, "trunk": trunk["id"]}).status_code == 201
    overlap = alfa.post(numbers, json={"number": "0612345678", "trunk": trunk["id"]}, headers=IT)
    assert overlap.status_code == 400 and "0612345600" in overlap.json()["detail"]
    assert "si sovrappone" in overlap.json()["detail"]
    second = alfa.post(numbers, json={"number": "0299000000", "new_trunk": {
        "description": "Backup", "carrier": "LabTel", "endpoint": "sbc.example.net:5080", "username": "alfa2",
        "password": "Secret-pass-2"}})  # fmt: skip
    assert second.status_code == 201 and second.json()["trunk"] == "Backup", second.text
    rows = alfa.get(numbers, params={"sort": "number", "desc": True}).json()
    assert [(r["block"], r["type"], r["carrier"], r["status"]) for r in rows] == [
        ("06123456XX", 2, "LabTel", "active"), ("0299000000", 0, "LabTel", "active")]  # fmt: skip
    assert [r["block"] for r in alfa.get(numbers, params={"q": "backup"}).json()] == ["0299000000"]
    assert alfa.get(numbers, params={"sort": "password"}).status_code == 422
    exported = alfa.get(numbers + ".csv")
    assert exported.headers["content-type"].startswith("text/csv") and "06123456XX" in exported.text
    # Import: a good line and an overlap: nothing written, the line named.
    bad = "number,type,trunk\n0311110000,0,Main\n0612345611,0,Main\n"
    refused = alfa.post(numbers + "/import", files={"file": ("n.csv", bad.encode(), "text/csv")}, headers=IT)
    assert refused.status_code == 400, refused.text
    assert [i["line"] for i in refused.json()["errors"]] == [3]
    assert len(alfa.get(numbers).json()) == 2
    good = "number,type,trunk\n0311110000,0,Main\n0311110100,2,Backup\n"
    assert alfa.post(numbers + "/import", files={"file": ("n.csv", good.encode(), "text/csv")}).json()["created"] == 2
    # A trunk with numbers stays, with the list of them; its numbers deleted, it goes.
    kept = alfa.delete(API + f"/trunks/{trunk['id']}")
    assert kept.status_code == 409 and "0311110000" in kept.json()["detail"] and "0612345600" in kept.json()["detail"]
    for n in ("0612345600", "0311110000"):
        assert alfa.delete(numbers + f"/{n}").status_code == 204
    assert alfa.delete(API + f"/trunks/{trunk['id']}").status_code == 204
    assert alfa.get(API + "/pbxs/alfapbx").json()["numbers"] == 2
    # The default destination is an extension of the PBX; the suspension cause one of the known ones.
    assert alfa.patch(API + "/pbxs/alfapbx", json={"default_destination": "999"}).status_code == 400
    assert alfa.post(API + "/pbxs/alfapbx/extensions", json={"number": "999"}).status_code == 201
    # How the directory publishes an extension: chosen at creation, changed later.
    made = alfa.post(API + "/pbxs/alfapbx/extensions", json={"number": "998", "directory_mode": "full"}).json()
    assert made["directory_mode"] == "full" and made["show_in_phonebook"] is True
    changed = alfa.patch(
        API + "/pbxs/alfapbx/extensions/998", json={"directory_mode": "none", "show_in_phonebook": False}
    )
    assert (changed.json()["directory_mode"], changed.json()["show_in_phonebook"]) == ("none", False)
    assert alfa.patch(API + "/pbxs/alfapbx/extensions/998", json={"directory_mode": "public"}).status_code == 422
    patched = alfa.patch(API + "/pbxs/alfapbx", json={"default_destination": "999", "suspended_cause": 1})
    assert (patched.json()["default_destination"], patched.json()["suspended_cause"]) == ("999", 1)
    assert alfa.patch(API + "/pbxs/alfapbx", json={"suspended_cause": 16}).status_code == 400
    log = [e["operation"] for e in alfa.get(API + "/log").json()]
    for expected in ("log.trunk_created", "log.number_created", "log.numbers_imported", "log.number_deleted",
                     "log.trunk_deleted"):  # fmt: skip
        assert expected in log
    assert "Secret-pass" not in alfa.get(API + "/log").text


def test_who_may_touch_trunks_numbers_and_groups(web: RunningWeb, factors: Factors) -> None:
    alfa = login(web, ALFA, factors)
    own = alfa.post(API + "/trunks", json={"description": "Alfa only", "carrier": "LabTel", "username": "only1",
                                           "password": "Secret-pass-3"}).json()  # fmt: skip
    beta = login(web, BETA, factors)
    assert all(t["description"] != "Alfa only" for t in beta.get(API + "/trunks").json())
    for method, path in (("PATCH", f"/trunks/{own['id']}"), ("DELETE", f"/trunks/{own['id']}"),
                         ("GET", "/pbxs/alfapbx/numbers"), ("POST", "/pbxs/alfapbx/numbers")):  # fmt: skip
        body = {"number": "0800000000", "trunk": own["id"]} if method == "POST" else {}
        answer = beta.request(method, API + path, json=body if method in ("POST", "PATCH") else None)
        assert answer.status_code == 404, (method, path, answer.text)
    # Beta cannot put a number on Alfa's trunk either.
    on_other = beta.post(API + "/pbxs/betapbx/numbers", json={"number": "0800000000", "trunk": own["id"]})
    assert on_other.status_code == 404
    read_only = login(web, PARTNER_RO, factors, view="Alfa Srl")
    assert read_only.get(API + "/trunks").status_code == 200
    assert read_only.post(API + "/trunks", json={"description": "x", "carrier": "LabTel"}).status_code == 403
    assert read_only.post(API + "/groups", json={"name": "G", "kind": "shared"}).status_code == 403
    # Groups: the partner's members only, in a customer's view too; customers are refused.
    refused = alfa.post(API + "/groups", json={"name": "G", "kind": "numbering"})
    assert refused.status_code == 403 and refused.json()["code"] == "groups.partner_only"
    partner = login(web, PARTNER, factors)
    assert partner.post(API + "/groups", json={"name": "Campus", "kind": "numbering"}).status_code == 201
    partner_alfa = login(web, PARTNER, factors, view="Alfa Srl")
    joined = partner_alfa.post(API + "/pbxs/alfapbx/group", json={"group": "Campus"})
    assert joined.status_code == 200 and joined.json()["kind"] == "group", joined.text
    assert alfa.post(API + "/pbxs/alfapbx/group", json={"group": None}).status_code == 403
    assert alfa.get(API + "/groups").json()[0]["name"] == "Campus" and beta.get(API + "/groups").json() == []
    assert httpx.get(web.url + API + "/trunks").status_code == 401
