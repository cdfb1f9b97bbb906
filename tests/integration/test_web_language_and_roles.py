"""Every refusal in the reader's language, with its code; a form that does
not validate gets a message per field; each role lands on a page it may
use, sees only those in the navigation, and a forbidden page is a page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kalliope_tel.db.engine import transaction
from tests.web_node import RunningWeb, seeded_web
from tests.web_support import ADMIN, FAX_USER, LAM_USER, PASSWORD, RECEPTION

pytestmark = [pytest.mark.integration]
API = "/api/v1/pbx/default"
IT = {"accept-language": "it-IT,it;q=0.9,en;q=0.8"}
EN = {"accept-language": "en"}


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("web-lang"), http_trust_forwarded=True) as node:
        yield node


def test_a_refusal_reads_in_italian_or_english_and_carries_its_code(web: RunningWeb) -> None:
    client, csrf = web.login(RECEPTION)
    h = {"x-csrf-token": csrf}
    assert client.post(f"{API}/rooms/103/checkin", json={"owner": "Anna Neri"}, headers=h).status_code == 201
    try:
        italian = client.post(f"{API}/rooms/103/checkin", json={"owner": "Bo"}, headers=h | IT)
        english = client.post(f"{API}/rooms/103/checkin", json={"owner": "Bo"}, headers=h | EN)
        assert italian.status_code == english.status_code == 409
        assert italian.json()["code"] == english.json()["code"] == "hotel.room_occupied"
        assert italian.json()["detail"].startswith("la camera 103 è occupata da Anna Neri dal ")
        assert english.json()["detail"].startswith("room 103 is occupied by Anna Neri since ")
        assert italian.json()["params"]["room"] == "103"
        # An alarm in the past, and a time that is not one: both in Italian.
        past = client.post(f"{API}/rooms/103/alarms", json={"at": "2020-01-01 07:00"}, headers=h | IT)
        assert past.status_code == 400 and past.json()["code"] == "wakeup.in_past", past.text
        assert "è nel passato" in past.json()["detail"]
        garbled = client.post(f"{API}/rooms/103/alarms", json={"at": "domani"}, headers=h | IT)
        assert garbled.status_code == 400 and "AAAA-MM-GG" in garbled.json()["detail"]
        # The language the user picked (cookie) wins over the browser's.
        client.cookies.set("kt_lang", "it")
        picked = client.post(f"{API}/rooms/103/checkin", json={"owner": "Bo"}, headers=h | EN)
        assert picked.json()["detail"].startswith("la camera 103")
        client.cookies.delete("kt_lang")
    finally:
        assert client.post(f"{API}/rooms/103/checkout", headers=h).status_code == 200


def test_a_form_that_does_not_validate_gets_a_message_per_field(web: RunningWeb) -> None:
    client, csrf = web.login(RECEPTION)
    h = {"x-csrf-token": csrf}
    empty = client.post(f"{API}/rooms/102/checkin", json={"owner": ""}, headers=h | IT)
    assert empty.status_code == 422
    body = empty.json()
    assert body["code"] == "validation" and body["fields"] == {"owner": "almeno 1 carattere/i"}, body
    assert "String should" not in empty.text  # never pydantic's own words
    many = client.post(f"{API}/rooms/102/alarms", json={"at": "2031-01-01 07:00", "attempts": 99}, headers=h | EN)
    assert many.status_code == 422 and many.json()["fields"] == {"attempts": "at most 10"}, many.text
    missing = client.post(f"{API}/rooms/102/checkin", json={}, headers=h | IT)
    assert missing.json()["fields"] == {"owner": "obbligatorio"}


def test_a_failed_login_and_a_missing_session_read_in_italian(web: RunningWeb) -> None:
    with web.client() as client:
        client.get("/login")
        wrong = client.post(
            "/api/v1/session",
            json={"email": RECEPTION.email, "password": "not " + PASSWORD},
            headers={"x-csrf-token": client.cookies["kt_login_csrf"], "x-forwarded-for": "10.55.0.1"} | IT,
        )
        assert wrong.status_code == 401 and wrong.json()["detail"] == "indirizzo e-mail o password errati"
        anonymous = client.get(f"{API}/rooms", headers=IT)
        assert anonymous.status_code == 401 and anonymous.json()["detail"] == "accedi prima"


@pytest.mark.parametrize(
    ("user", "home"),
    [(RECEPTION, "panel"), (FAX_USER, "fax"), (LAM_USER, "lam"), (ADMIN, "panel")],
    ids=lambda v: getattr(v, "name", v),
)
def test_each_role_lands_on_a_page_it_may_use_and_sees_only_those(web: RunningWeb, user: object, home: str) -> None:
    client, _ = web.login(user)  # type: ignore[arg-type]
    landing = client.get("/", follow_redirects=False)
    assert landing.status_code == 303 and landing.headers["location"] == f"/pbx/default/{home}"
    page = client.get(landing.headers["location"])
    assert page.status_code == 200
    nav = page.text.split("<nav", 1)[1].split("</nav>", 1)[0]
    links = {"panel": "/pbx/default/panel", "fax": "/pbx/default/fax", "lam": "/pbx/default/lam",
             "admin": "/pbx/default/admin"}  # fmt: skip
    expected = {
        "rita": {"panel"},
        "fabio": {"fax"},
        "luca": {"lam"},
        "anna": {"panel", "fax", "lam", "admin"},  # one entry for every administration page
    }[user.name]  # type: ignore[attr-defined]
    assert {k for k, href in links.items() if f'href="{href}"' in nav} == expected, nav
    assert f'href="/pbx/default/{home}" aria-current="page"' in nav


def test_a_forbidden_page_is_a_page_with_navigation_and_logout(web: RunningWeb) -> None:
    client, _ = web.login(FAX_USER)
    refused = client.get("/pbx/default/panel", headers=IT)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert 'lang="it"' in refused.text and "I tuoi ruoli in questo PBX non comprendono questa pagina" in refused.text
    assert 'href="/pbx/default/fax"' in refused.text and 'id="logout"' in refused.text
    other = client.get("/pbx/other/fax", headers=EN)  # another PBX: the same page, nothing about it
    assert other.status_code == 403 and "Your roles in this PBX do not include this page" in other.text


def test_the_meetings_page_shows_for_a_rooms_owner_only(web: RunningWeb) -> None:
    from kalliope_tel.lam import services as lam
    from kalliope_tel.tenancy.services import get_pbx
    from kalliope_tel.users.services import get_user

    client, _ = web.login(RECEPTION)
    assert 'href="/pbx/default/lam"' not in client.get("/pbx/default/panel").text
    with transaction(web.container.sessions) as s:
        pbx = get_pbx(s)
        lam.update_settings(s, pbx, licences=2)
        room = lam.create_room(s, pbx, "Blue", lam.ADMIN)
        lam.set_owners(s, pbx, room.name, [get_user(s, pbx, RECEPTION.name).name], lam.ADMIN)
    assert 'href="/pbx/default/lam"' in client.get("/pbx/default/panel").text
