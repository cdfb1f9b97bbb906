"""The web API on a real uvicorn and a committed database of each backend:
logins, roles per PBX, CSRF, sessions, the live event stream, the fax pages'
API, and the languages. Every route of the OpenAPI document is tried by
every kind of caller."""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kalliope_tel.db import migrate
from kalliope_tel.db.engine import make_engine, make_session_factory, transaction
from kalliope_tel.fax.models import FaxJob
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.users import services as users
from kalliope_tel.users.models import Role
from kalliope_tel.web.i18n import MESSAGES
from kalliope_tel.web.models import AuditEntry
from tests.conftest import drop_pg_database, kalliope, new_database_url
from tests.web_node import RunningWeb
from tests.web_support import (
    ADMIN,
    FAX_USER,
    NOBODY,
    OTHER_RECEPTION,
    PASSWORD,
    RECEPTION,
    WebUser,
    seed_received_fax,
    seed_web_hotel,
    write_pdf,
)

pytestmark = [pytest.mark.integration]

# Routes that answer without a session, on purpose.
PUBLIC = {("GET", "/api/health"), ("POST", "/api/v1/session"), ("POST", "/api/v1/password-reset")}
# Routes outside a PBX (the caller's own session).
SESSION_ROUTES = {
    ("DELETE", "/api/v1/session"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/session/second-factor"),
    ("POST", "/api/v1/session/enrolment"),
    ("POST", "/api/v1/session/enrolment/confirm"),
    ("POST", "/api/v1/session/company"),
    ("POST", "/api/v1/session/view"),
}
# The Admin Console's routes: walked per role and company in test_console_api.
CONSOLE = "/api/v1/console/"
MANAGER = "/api/v1/manager/"
PARAMS = {
    "pbx": "default",
    "extension": "101",
    "alarm_id": "1",
    "fax_id": "in-1",
    "kind": "document",
    "room": "Blue",
    "meeting_id": "1",
    "job_id": "1",
    "name": "nobody-here",
    "stay_id": "1",
    "series_id": "no-such-series",
    "position": "9",
    "key": "office:nobody-here",
    "trunk_id": "999999",
}


@pytest.fixture(scope="module")
def site(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningWeb, str, Path]]:
    data_dir = tmp_path_factory.mktemp("web")
    url, handle = new_database_url(db_backend, data_dir)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        seed_web_hotel(session)
        seed_received_fax(session, data_dir)
    engine.dispose()
    # Addresses from X-Forwarded-For: each test's failed logins count against an address of its own.
    web = RunningWeb(url, data_dir, http_trust_forwarded=True)
    yield web, url, data_dir
    web.stop()
    if handle:
        drop_pg_database(str(handle))


def routes(web: RunningWeb) -> list[tuple[str, str, set[str]]]:
    """(method, path template, tags) of every route in the OpenAPI document."""
    document = httpx.get(web.url + "/api/openapi.json").json()
    return [
        (method.upper(), path, set(op.get("tags", [])))
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    ]


def fill(path: str, **params: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: {**PARAMS, **params}[m.group(1)], path)


# The walk's one excused fault: a kept-alive connection reset by the peer
# while the answer was read (seen once in CI on a loaded machine, 1 call of
# about 1,500; not reproduced alone under load). The call is sent again on a
# new connection, at most RESETS_EXCUSED times a module; anything else fails.
RESETS_EXCUSED = 2
resets_seen: list[tuple[str, str]] = []


def call(client: httpx.Client, method: str, path: str, csrf: str = "") -> httpx.Response:
    headers = {"x-csrf-token": csrf} if csrf else {}
    body = {} if method != "GET" else None
    try:
        return client.request(method, path, headers=headers, json=body)
    except httpx.ReadError as error:
        if "reset by peer" not in str(error) or len(resets_seen) >= RESETS_EXCUSED:
            raise AssertionError(f"{method} {path}: {error!r} (resets before: {resets_seen})") from error
        resets_seen.append((method, path))
        return client.request(method, path, headers={**headers, "connection": "close"}, json=body)


def login_status(web: RunningWeb, email: str, password: str, ip: str) -> httpx.Response:
    with web.client() as client:
        client.get("/login")
        return client.post(
            "/api/v1/session",
            json={"email": email, "password": password},
            headers={"x-csrf-token": client.cookies["kt_login_csrf"], "x-forwarded-for": ip},
        )


# ------------------------------------------------------------------ who may call what
def test_every_route_refuses_anonymous_callers_and_other_pbxs(site: tuple[RunningWeb, str, Path]) -> None:
    web, _, _ = site
    table = routes(web)
    assert len(table) >= 20
    in_pbx = [(m, p) for m, p, _ in table if "{pbx}" in p]
    outside = {(m, p) for m, p, _ in table if "{pbx}" not in p and not p.startswith((CONSOLE, MANAGER))}
    manager = [(m, p) for m, p, _ in table if p.startswith(MANAGER)]
    assert len(manager) >= 15
    assert outside == PUBLIC | SESSION_ROUTES, "a route outside /api/v1/pbx/{pbx} must be added here on purpose"
    anonymous = web.client()
    other, other_csrf = web.login(OTHER_RECEPTION)
    mine, mine_csrf = web.login(ADMIN)
    for method, path in in_pbx:
        assert call(anonymous, method, fill(path)).status_code == 401, (method, path)
        # A receptionist of PBX 'other', with a valid session and token, asking for 'default'.
        assert call(other, method, fill(path), other_csrf).status_code == 403, (method, path)
        # The administrator of 'default', asking for 'other' (exists) and for a PBX that does not.
        for foreign in ("other", "nope"):
            assert call(mine, method, fill(path, pbx=foreign), mine_csrf).status_code == 403, (method, path, foreign)
    for method, path in SESSION_ROUTES:
        assert call(anonymous, method, path).status_code == 401
    # The Manager's routes: nobody anonymous, and a PBX administrator is no Manager member.
    for method, path in manager:
        filled = fill(path, slug="default", number="101")
        assert call(anonymous, method, filled).status_code == 401, (method, path)
        assert call(mine, method, filled, mine_csrf).status_code == 403, (method, path)


def test_each_role_reaches_its_routes_only(site: tuple[RunningWeb, str, Path]) -> None:
    web, _, _ = site
    table = [(m, p, tags) for m, p, tags in routes(web) if "{pbx}" in p]
    hotel = [(m, p) for m, p, tags in table if tags & {"hotel", "wake-up", "billing"}]
    fax = [(m, p) for m, p, tags in table if "fax" in tags]
    # LAM's routes serve every role; each user sees the rooms they manage (test_lam.py, test_web_browser.py).
    lam = [(m, p) for m, p, tags in table if "lam" in tags]
    users = [(m, p) for m, p, tags in table if tags & {"users", "administration"}]  # administrators only
    assert hotel and fax and lam and users and len(hotel) + len(fax) + len(lam) + len(users) == len(table)
    reception, r_csrf = web.login(RECEPTION)
    faxer, f_csrf = web.login(FAX_USER)
    admin, a_csrf = web.login(ADMIN)
    for client, csrf in ((reception, r_csrf), (faxer, f_csrf)):
        for method, path in users:
            assert call(client, method, fill(path), csrf).status_code == 403, (method, path)
    for method, path in fax:
        assert call(reception, method, fill(path), r_csrf).status_code == 403, (method, path)
    for method, path in hotel:
        assert call(faxer, method, fill(path), f_csrf).status_code == 403, (method, path)
    for method, path in hotel + fax + users:
        if method == "GET" and not path.endswith("/events"):
            status = call(admin, method, fill(path), a_csrf).status_code
            assert status not in (401, 403), (method, path, status)
    # The receptionist's reads work (the walk above only proves refusals).
    assert len(reception.get("/api/v1/pbx/default/rooms").json()) == 6
    # A user without any role cannot log in at all.
    refused = login_status(web, NOBODY.email, PASSWORD, "10.0.0.9")
    assert refused.status_code == 401 and "no role" in refused.json()["detail"]


def test_changes_need_the_sessions_csrf_token(site: tuple[RunningWeb, str, Path]) -> None:
    web, _, _ = site
    client, csrf = web.login(RECEPTION)
    path = "/api/v1/pbx/default/rooms/103/cleaning"
    assert client.put(path, json={"clean": False}).status_code == 403
    assert client.put(path, json={"clean": False}, headers={"x-csrf-token": "forged"}).status_code == 403
    _other, other_csrf = web.login(RECEPTION)
    assert other_csrf != csrf
    assert client.put(path, json={"clean": False}, headers={"x-csrf-token": other_csrf}).status_code == 403
    done = client.put(path, json={"clean": False}, headers={"x-csrf-token": csrf})
    assert done.status_code == 200 and done.json()["clean"] is False
    # Logging in needs the login page's token too (no login CSRF from another site).
    with web.client() as bare:
        no_cookie = bare.post("/api/v1/session", json={"email": RECEPTION.email, "password": PASSWORD})
    assert no_cookie.status_code == 403


def test_session_cookie_flags_and_security_headers(site: tuple[RunningWeb, str, Path]) -> None:
    web, _, _ = site
    with web.client() as client:
        page = client.get("/login")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        response = client.post(
            "/api/v1/session",
            json={"email": RECEPTION.email, "password": PASSWORD},
            headers={"x-csrf-token": client.cookies["kt_login_csrf"]},
        )
        cookie = response.headers["set-cookie"]
        assert "kt_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert response.headers["cache-control"] == "no-store"
        # The token is not stored as such: the database keeps its SHA-256 only.
        token = client.cookies["kt_session"]
    _, url, _ = site
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = [row[0] for row in conn.exec_driver_sql("SELECT token_hash FROM web_session")]
    engine.dispose()
    assert token not in stored and len(stored) >= 1


def test_sessions_end_at_logout_password_change_and_role_removal(site: tuple[RunningWeb, str, Path]) -> None:
    web, url, _data_dir = site
    user = WebUser("default", "sam", "sam@hotel.test", (Role.RECEPTIONIST,))
    change(url, lambda s, p: _add(s, p, user))
    one, csrf = web.login(user)
    assert one.get("/api/v1/me").json()["roles"] == ["receptionist"]
    assert one.delete("/api/v1/session", headers={"x-csrf-token": csrf}).status_code == 200
    assert one.get("/api/v1/me").status_code == 401

    two, _ = web.login(user)
    change(url, lambda s, p: users.set_password(s, p, "sam", "another long password"))
    assert two.get("/api/v1/pbx/default/rooms").status_code == 401
    three, _ = web.login(user, "another long password")
    change(url, lambda s, p: users.set_roles(s, p, "sam", {Role.FAX}))
    assert three.get("/api/v1/pbx/default/rooms").status_code == 401


def test_failed_logins_are_audited_and_throttled(site: tuple[RunningWeb, str, Path]) -> None:
    web, url, _ = site
    user = WebUser("default", "lena", "lena@hotel.test", (Role.RECEPTIONIST,))
    change(url, lambda s, p: _add(s, p, user))
    assert login_status(web, user.email, PASSWORD, "10.1.1.9").status_code == 200  # her usual address
    for _ in range(5):
        assert login_status(web, user.email, "wrong password!", "10.1.1.1").status_code == 401
    blocked = login_status(web, user.email, PASSWORD, "10.1.1.1")
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    # A guesser elsewhere locks nobody out: the right password from her usual
    # address, and from another address (the account-wide count is at 6 of 10).
    assert login_status(web, user.email, PASSWORD, "10.1.1.9").status_code == 200
    assert login_status(web, user.email, PASSWORD, "10.1.1.2").status_code == 200
    # One address trying many logins is held back after 20 checks.
    for n in range(20):
        assert login_status(web, f"ghost{n}@hotel.test", "whatever", "10.1.2.1").status_code == 401
    assert login_status(web, RECEPTION.email, PASSWORD, "10.1.2.1").status_code == 429
    # Unknown addresses count as well, and say nothing about which part was wrong.
    unknown = login_status(web, "ghost@hotel.test", "whatever", "10.1.1.3")
    assert unknown.status_code == 401 and unknown.json()["detail"] == "wrong e-mail address or password"
    rows = change(
        url,
        lambda s, p: s.execute(
            select(AuditEntry.ip, AuditEntry.ok, AuditEntry.detail).where(
                AuditEntry.action == "login", AuditEntry.ip.like("10.1.1.%")
            )
        ).all(),
    )
    assert sum(1 for ip, ok, detail in rows if ip == "10.1.1.1" and not ok and detail == "wrong password") == 5
    assert ("10.1.1.3", False, "unknown address") in [tuple(r) for r in rows]


def test_changes_through_the_api_are_audited_with_the_caller(site: tuple[RunningWeb, str, Path]) -> None:
    web, url, _ = site
    client, csrf = web.login(RECEPTION)
    # The site trusts X-Forwarded-For (behind a proxy): the audit names the caller's address, not the proxy's.
    h = {"x-csrf-token": csrf, "x-forwarded-for": "10.7.7.7"}
    client.put("/api/v1/pbx/default/rooms/251/cleaning", json={"clean": False}, headers=h)
    client.put("/api/v1/pbx/default/rooms/999/cleaning", json={"clean": False}, headers=h)
    rows = change(
        url,
        lambda s, p: s.execute(
            select(AuditEntry.action, AuditEntry.ok, AuditEntry.detail, AuditEntry.login, AuditEntry.ip).where(
                AuditEntry.action.like("PUT /api/v1/pbx/default/rooms/%51/cleaning")
                | AuditEntry.action.like("PUT /api/v1/pbx/default/rooms/999/cleaning")
            )
        ).all(),
    )
    seen = [tuple(r) for r in rows]
    assert ("PUT /api/v1/pbx/default/rooms/251/cleaning", True, "200", RECEPTION.email, "10.7.7.7") in seen
    assert ("PUT /api/v1/pbx/default/rooms/999/cleaning", False, "404", RECEPTION.email, "10.7.7.7") in seen


# ------------------------------------------------------------------ the panel's API
def test_check_in_filters_and_refusals(site: tuple[RunningWeb, str, Path]) -> None:
    web, _, _ = site
    client, csrf = web.login(RECEPTION)
    h = {"x-csrf-token": csrf}
    api = "/api/v1/pbx/default"
    body = {
        "owner": "Giulia Bianchi",
        "guests": ["Marco Bianchi"],
        "notes": "late arrival",
        "alarms": ["2031-03-01T07:30"],
    }
    room = client.post(f"{api}/rooms/201/checkin", json=body, headers=h)
    assert room.status_code == 201, room.text
    data = room.json()
    assert data["occupied"] and data["stay"]["guests"] == ["Marco Bianchi"]
    assert data["next_alarm"] == "2031-03-01T07:30:00+00:00"
    assert client.post(f"{api}/rooms/201/checkin", json=body, headers=h).status_code == 409
    assert client.post(f"{api}/rooms/999/checkin", json=body, headers=h).status_code == 404
    empty = client.post(f"{api}/rooms/202/checkin", json={"owner": ""}, headers=h)
    assert empty.status_code == 422
    bad_time = client.post(f"{api}/rooms/151/checkin", json={"owner": "X", "alarms": ["tomorrow"]}, headers=h)
    assert bad_time.status_code == 400 and "YYYY-MM-DD" in bad_time.json()["detail"]
    assert not client.get(f"{api}/rooms/151").json()["occupied"], "a refused check-in leaves nothing behind"
    # Filters: floor, building, free text over guests and notes.
    assert {r["extension"] for r in client.get(f"{api}/rooms", params={"floor": "2"}).json()} == {"201", "251"}
    assert {r["extension"] for r in client.get(f"{api}/rooms", params={"building": "Annex"}).json()} == {"151", "251"}
    assert [r["extension"] for r in client.get(f"{api}/rooms", params={"text": "marco"}).json()] == ["201"]
    assert [r["extension"] for r in client.get(f"{api}/rooms", params={"text": "LATE"}).json()] == ["201"]
    alarms = client.get(f"{api}/rooms/201/alarms").json()
    assert [a["state"] for a in alarms["active"]] == ["scheduled"]
    changed = client.patch(f"{api}/rooms/201/stay", json={"notes": "VIP"}, headers=h).json()
    assert changed["stay"]["notes"] == "VIP"
    out = client.post(f"{api}/rooms/201/checkout", headers=h)
    assert out.status_code == 200 and not out.json()["occupied"] and out.json()["next_alarm"] is None
    assert client.post(f"{api}/rooms/201/checkout", headers=h).status_code == 409


# ------------------------------------------------------------------ live updates
class EventStream:
    """An open /events stream read on a thread: (arrival time, event, data)."""

    def __init__(self, client: httpx.Client, path: str) -> None:
        self.events: queue.Queue[tuple[float, str, Any]] = queue.Queue()
        self._client = client
        self._thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self._thread.start()
        first = self.next(10)
        assert first[1] == "ready"

    def _read(self, path: str) -> None:
        try:
            with self._client.stream("GET", path, timeout=httpx.Timeout(60, read=None)) as response:
                event = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        self.events.put((time.monotonic(), event, json.loads(line[5:].strip())))
        except (httpx.HTTPError, RuntimeError):
            pass

    def next(self, timeout: float) -> tuple[float, str, Any]:
        return self.events.get(timeout=timeout)

    def rooms_until(self, check: Any, timeout: float) -> tuple[float, list[dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while True:
            at, event, data = self.next(max(0.01, deadline - time.monotonic()))
            if event == "rooms" and check(data):
                return at, data

    def close(self) -> None:
        self._client.close()


def test_a_change_from_another_process_reaches_open_streams_within_a_second(
    site: tuple[RunningWeb, str, Path],
) -> None:
    web, url, _ = site
    reception, _ = web.login(RECEPTION)
    other, _ = web.login(OTHER_RECEPTION)
    mine = EventStream(reception, "/api/v1/pbx/default/events")
    theirs = EventStream(other, "/api/v1/pbx/other/events")
    try:
        for clean in (False, True):
            result = kalliope(
                "hotel", "clean", "102", "--clean" if clean else "--dirty", env={"KALLIOPE_DATABASE_URL": url}
            )
            assert result.returncode == 0, result.stderr
            # Pushed by the feed, no reload (how soon: ``kalliope-tel bench web``, p99 target 1 s).
            _, rooms = mine.rooms_until(
                lambda d, c=clean: any(r["extension"] == "102" and r["clean"] is c for r in d), 5
            )
            assert [r["extension"] for r in rooms] == ["102"]
        with pytest.raises(queue.Empty):
            theirs.rooms_until(lambda d: True, 0.5)  # PBX 'other' saw nothing of 'default'
    finally:
        mine.close()
        theirs.close()


# ------------------------------------------------------------------ fax
def test_fax_user_sends_a_pdf_and_downloads_a_received_fax(site: tuple[RunningWeb, str, Path], tmp_path: Path) -> None:
    web, url, _ = site
    client, csrf = web.login(FAX_USER)
    api = "/api/v1/pbx/default/fax"
    assert client.get(f"{api}/instances").json() == [{"name": "office", "may_send": True, "may_receive": True}]
    pdf = write_pdf(tmp_path / "letter.pdf", pages=2)
    before = change(url, lambda s, p: s.scalar(select(func.count()).select_from(FaxJob)))
    with pdf.open("rb") as f:
        sent = client.post(
            f"{api}/send",
            data={"instance": "office", "number": "601"},
            files={"documents": ("letter.pdf", f, "application/pdf")},
            headers={"x-csrf-token": csrf},
        )
    assert sent.status_code == 201, sent.text
    assert sent.json()["pages"] == 2
    assert change(url, lambda s, p: s.scalar(select(func.count()).select_from(FaxJob))) == before + 1
    register = client.get(f"{api}/register").json()
    assert {"out", "in"} <= {e["direction"] for e in register}
    received = next(e for e in register if e["direction"] == "in")
    document = client.get(f"{api}/register/{received['id']}/files/document")
    assert document.status_code == 200 and document.content.startswith(b"%PDF")
    assert "attachment" in document.headers["content-disposition"]
    # Refusals: a number no class allows, a broken PDF, nothing at all; the job table unchanged.
    with pdf.open("rb") as f:
        bad_number = client.post(
            f"{api}/send", data={"instance": "office", "number": "0039123"},
            files={"documents": ("letter.pdf", f, "application/pdf")}, headers={"x-csrf-token": csrf},
        )  # fmt: skip
    assert bad_number.status_code == 400
    broken = client.post(
        f"{api}/send", data={"instance": "office", "number": "601"},
        files={"documents": ("broken.pdf", b"%PDF-1.4 not really", "application/pdf")}, headers={"x-csrf-token": csrf},
    )  # fmt: skip
    assert broken.status_code == 400 and "broken.pdf" in broken.json()["detail"]
    assert change(url, lambda s, p: s.scalar(select(func.count()).select_from(FaxJob))) == before + 1
    # A receptionist gets 403 on the fax API.
    reception, _ = web.login(RECEPTION)
    assert reception.get(f"{api}/register").status_code == 403
    assert reception.get(f"{api}/register/{received['id']}/files/document").status_code == 403


# ------------------------------------------------------------------ languages
def test_language_from_the_browser_and_switchable(site: tuple[RunningWeb, str, Path]) -> None:
    web, _, _ = site
    assert set(MESSAGES["en"]) == set(MESSAGES["it"])
    with web.client() as client:
        italian = client.get("/login", headers={"accept-language": "it-IT,it;q=0.9,en;q=0.8"})
        assert 'lang="it"' in italian.text and MESSAGES["it"]["login.submit"] in italian.text
        english = client.get("/login", headers={"accept-language": "de-DE,de;q=0.9,en;q=0.5"})
        assert 'lang="en"' in english.text
        switched = client.get("/login?lang=it", headers={"accept-language": "en"})
        assert 'lang="it"' in switched.text
        assert client.get("/login", headers={"accept-language": "en"}).text.count('lang="it"') >= 1


def test_health_for_load_balancers(site: tuple[RunningWeb, str, Path]) -> None:
    web, _, _ = site
    response = httpx.get(web.url + "/api/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


# ------------------------------------------------------------------ helpers
def change(url: str, work: Any) -> Any:
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            return work(session, get_pbx(session))
    finally:
        engine.dispose()


def _add(session: Any, pbx: Any, user: WebUser) -> None:
    users.add_user(session, pbx, user.name, user.email)
    users.set_password(session, pbx, user.name, PASSWORD)
    users.set_roles(session, pbx, user.name, set(user.roles))


def test_a_change_on_one_node_reaches_the_panels_of_another_through_notify(
    site: tuple[RunningWeb, str, Path],
) -> None:
    """Two nodes on one PostgreSQL: a receptionist on node A marks a room; a
    panel open on node B gets it pushed (LISTEN/NOTIFY; B polls only every 5 s,
    so an arrival within a second is the notification's doing)."""
    web, url, data_dir = site
    if not url.startswith("postgresql"):
        pytest.skip("several nodes share PostgreSQL; SQLite is one node's store")
    other = RunningWeb(url, data_dir)
    try:
        assert other.node.feed.poll == 5.0 and other.node.feed.listen_url
        writer, csrf = web.login(RECEPTION)
        reader, _ = other.login(RECEPTION)
        stream = EventStream(reader, "/api/v1/pbx/default/events")
        try:
            time.sleep(0.5)  # B's LISTEN is up (it listens from its start; this is margin)
            for clean in (False, True, False):
                done = writer.put(
                    "/api/v1/pbx/default/rooms/201/cleaning", json={"clean": clean}, headers={"x-csrf-token": csrf}
                )
                assert done.status_code == 200
                # Through PostgreSQL's NOTIFY from node A to node B's stream (how soon: ``bench web``).
                stream.rooms_until(lambda d, c=clean: any(r["extension"] == "201" and r["clean"] is c for r in d), 5)
        finally:
            stream.close()
    finally:
        other.stop()


def test_an_open_stream_ends_when_its_session_does(site: tuple[RunningWeb, str, Path], monkeypatch: Any) -> None:
    from kalliope_tel.hotel import web as hotel_web

    web, url, _ = site
    monkeypatch.setattr(hotel_web, "REVALIDATE_SECONDS", 0.3)
    user = WebUser("default", "vera", "vera@hotel.test", (Role.RECEPTIONIST,))
    change(url, lambda s, p: _add(s, p, user))
    client, _ = web.login(user)
    stream = EventStream(client, "/api/v1/pbx/default/events")
    try:
        change(url, lambda s, p: users.set_roles(s, p, "vera", {Role.FAX}))
        deadline = time.monotonic() + 5
        events = []
        while time.monotonic() < deadline and "logout" not in events:
            events.append(stream.next(max(0.01, deadline - time.monotonic()))[1])
        assert "logout" in events
    finally:
        stream.close()


def test_housekeeping_prunes_expired_sessions_and_old_audit_entries(site: tuple[RunningWeb, str, Path]) -> None:
    from datetime import timedelta

    from kalliope_tel.db.base import utcnow
    from kalliope_tel.web.access import prune
    from kalliope_tel.web.models import WebSession

    web, url, _ = site
    web.login(ADMIN)  # a session and an audit entry, whichever tests ran before on this worker
    later = utcnow() + timedelta(days=500)  # as if 500 days from now: every session expired, every entry old
    before = change(url, lambda s, p: (s.scalar(select(func.count()).select_from(WebSession)),
                                       s.scalar(select(func.count()).select_from(AuditEntry))))  # fmt: skip
    assert before[0] > 0 and before[1] > 0
    assert change(url, lambda s, p: prune(s, 400, now=utcnow()))[1] == 0  # nothing is that old yet
    assert change(url, lambda s, p: prune(s, 400, now=later)) == (before[0], before[1])


def test_an_occupied_rooms_call_cost_since_check_in_is_on_the_panel(site: tuple[RunningWeb, str, Path]) -> None:
    """Billing runs: a priced call from the room shows on its card."""
    from kalliope_tel.billing import profiles
    from kalliope_tel.billing.records import Rater, parse, record
    from tests.billing_support import LAB_RULES
    from tests.integration.test_billing_store import cdr

    web, url, _ = site
    client, csrf = web.login(RECEPTION)
    api = "/api/v1/pbx/default"
    assert (
        client.post(
            f"{api}/rooms/151/checkin", json={"owner": "Carla Neri"}, headers={"x-csrf-token": csrf}
        ).status_code
        == 201
    )

    def bill(s: Any, p: Any) -> None:
        profile = profiles.create_profile(s, p, "lab", line="lab-trunk")
        profiles.add_rules(s, p, profile, LAB_RULES)
        line = cdr("1795950000.41", "0612345678", 60, start=time.time(), kt_from="151", channel="PJSIP/151-00000009")
        assert record(s, "", parse(line), source="file", node="test", rater=Rater())

    change(url, bill)
    card = client.get(f"{api}/rooms/151").json()
    # 0.05 connection fee + 60 s at 0.12/min in 30/6 increments = 0.17
    assert card["cost"] == {"total": {"EUR": "0.1700"}, "unpriced": 0}, card["cost"]
    assert client.get(f"{api}/rooms/101").json()["cost"] is None  # free room: no cost shown


def test_the_api_reference_page_is_behind_login_and_lists_every_route(site: tuple[RunningWeb, str, Path]) -> None:
    web, _, _ = site
    with web.client() as anonymous:
        refused = anonymous.get("/api/docs", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/login"
    client, _ = web.login(FAX_USER)
    shown = client.get("/api/docs", headers={"accept-language": "it"})
    assert shown.status_code == 200 and MESSAGES["it"]["api.title"] in shown.text
    for _method, path, _tags in routes(web):
        assert f"<code>{path}</code>" in shown.text, path
