"""Password reset by an e-mailed link, and the users' PGP keys, from the users
page: an administrator sends a link, serve's job mails it through a real SMTP
server, the user opens it in Chromium and chooses a password (their old
sessions end); a link works once, a newer one replaces it, and the token is
in no request line. Each other role is refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kalliope_tel.db.engine import transaction
from kalliope_tel.tenancy.services import get_pbx
from kalliope_tel.users.models import PasswordReset, ResetState
from kalliope_tel.users.services import get_user
from tests.browser import browser, screenshot  # noqa: F401 - browser is a fixture
from tests.fax_service_support import MailSink
from tests.mail2fax_support import Keys, stop_gpg_agents
from tests.owed_mail import send_owed_links
from tests.web_node import RunningWeb, seeded_web
from tests.web_support import ADMIN, FAX_USER, OTHER_RECEPTION, PASSWORD, RECEPTION

pytestmark = [pytest.mark.integration]
USERS = "/api/v1/pbx/default/users"
IT = {"accept-language": "it"}
NEW_PASSWORD = "a new password for rita"


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory, mail: tuple[MailSink, int]) -> Iterator[RunningWeb]:
    folder = tmp_path_factory.mktemp("web-resets")
    with seeded_web(db_backend, folder, smtp_url=f"smtp://127.0.0.1:{mail[1]}", mail_from="pbx@hotel.test") as node:
        yield node


def _link(sink: MailSink, address: str) -> str:
    body = sink.to(address)[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"(http://\S+/password-reset#\S+)", body)
    assert found, body
    return found.group(1)


def test_a_reset_link_sets_the_password_once_and_ends_the_old_sessions(
    browser: Any,  # noqa: F811
    web: RunningWeb,
    mail: tuple[MailSink, int],
) -> None:
    sink, _ = mail
    admin, csrf = web.login(ADMIN)
    rita, _ = web.login(RECEPTION)  # a session that must end with the new password
    assert rita.get("/api/v1/me").status_code == 200
    first = admin.post(f"{USERS}/rita/reset", headers={"x-csrf-token": csrf} | IT)
    assert first.status_code == 200 and "rita@hotel.test" in first.json()["message"], first.text
    assert send_owed_links(web) == 1
    old_link = _link(sink, RECEPTION.email)
    # A newer link replaces it (the mail in the reader's language of the administrator who asked).
    admin.post(f"{USERS}/rita/reset", headers={"x-csrf-token": csrf} | IT)
    assert send_owed_links(web) == 1 and send_owed_links(web) == 0  # each mail once
    message = sink.to(RECEPTION.email)[-1]
    assert message["Subject"] == "La tua nuova password di kalliope-tel"
    link = _link(sink, RECEPTION.email)
    assert link != old_link and link.split("#")[0] == web.url + "/password-reset"
    with transaction(web.container.sessions, read_only=True) as s:
        rows = list(s.query(PasswordReset).order_by(PasswordReset.id))
        assert [r.state for r in rows] == [ResetState.REPLACED, ResetState.SENT]
        assert all(r.token == "" for r in rows)  # sent: only the hash is kept
    page = browser.new_context(locale="it").new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(old_link)
    page.fill("#new-password", NEW_PASSWORD)
    page.fill("#new-password-again", NEW_PASSWORD)
    page.locator("#reset-form button[type=submit]").click()
    page.wait_for_selector("#reset-error:not([hidden])")
    assert "questo link non funziona" in page.locator("#reset-error").inner_text()
    page.goto(link)
    page.wait_for_function("!window.location.hash")  # taken out of the address bar at once
    page.fill("#new-password", NEW_PASSWORD)
    page.fill("#new-password-again", NEW_PASSWORD + "x")
    page.locator("#reset-form button[type=submit]").click()
    assert "diverse" in page.locator("#reset-error").inner_text()
    page.fill("#new-password-again", NEW_PASSWORD)
    page.locator("#reset-form button[type=submit]").click()
    page.wait_for_selector("#reset-done:not([hidden])")
    screenshot(page, "password-reset-done-it")
    page.context.close()
    token = link.split("#", 1)[1]
    assert not [url for url in requested if token in url]  # the token went in a body, never a URL
    assert rita.get("/api/v1/me").status_code == 401  # the old session ended
    web.login(RECEPTION, NEW_PASSWORD)
    again = admin.post("/api/v1/password-reset", json={"token": token, "password": "yet another password"})
    assert again.status_code == 403  # no page token (CSRF): refused before the token is looked at
    with transaction(web.container.sessions) as s:  # back to the suite's password for the other tests
        from kalliope_tel.users.services import set_password

        set_password(s, get_pbx(s), "rita", PASSWORD)


def test_a_used_link_is_refused_through_the_api_in_italian(web: RunningWeb, mail: tuple[MailSink, int]) -> None:
    sink, _ = mail
    admin, csrf = web.login(ADMIN)
    admin.post(f"{USERS}/fabio/reset", headers={"x-csrf-token": csrf})
    assert send_owed_links(web) == 1
    token = _link(sink, FAX_USER.email).split("#", 1)[1]
    with web.client() as anonymous:
        anonymous.get("/password-reset")
        h = {"x-csrf-token": anonymous.cookies["kt_login_csrf"]} | IT
        short = anonymous.post("/api/v1/password-reset", json={"token": token, "password": "short"}, headers=h)
        assert short.status_code == 400 and short.json()["code"] == "user.password_length"
        done = anonymous.post("/api/v1/password-reset", json={"token": token, "password": PASSWORD}, headers=h)
        assert done.status_code == 200 and done.json() == {"email": FAX_USER.email}
        used = anonymous.post("/api/v1/password-reset", json={"token": token, "password": PASSWORD}, headers=h)
        assert used.status_code == 400 and used.json()["detail"].startswith("questo link non funziona")
        guess = anonymous.post("/api/v1/password-reset", json={"token": "x" * 43, "password": PASSWORD}, headers=h)
        assert guess.status_code == 400 and guess.json()["code"] == "reset.invalid"


def test_an_administrator_sets_and_removes_a_users_pgp_key(web: RunningWeb, tmp_path: Path) -> None:
    admin, csrf = web.login(ADMIN)
    h = {"x-csrf-token": csrf}
    keys = Keys.make(tmp_path / "gpg", "Fabio <fabio@hotel.test>")
    try:
        done = admin.put(f"{USERS}/fabio/pgp-key", json={"key": keys.public()}, headers=h)
        assert done.status_code == 200 and done.json()["pgp_fingerprint"] == keys.fingerprint, done.text
        assert next(u for u in admin.get(USERS).json() if u["name"] == "fabio")["pgp"] is True
        secret = admin.put(f"{USERS}/fabio/pgp-key", json={"key": keys.secret()}, headers=h | IT)
        assert secret.status_code == 400 and secret.json()["code"] == "pgp.secret_given"
    finally:
        stop_gpg_agents(tmp_path)
    junk = admin.put(f"{USERS}/fabio/pgp-key", json={"key": "not a key"}, headers=h | IT)
    assert junk.status_code == 400 and junk.json()["detail"] == "nessuna chiave OpenPGP in quel file"
    assert admin.delete(f"{USERS}/fabio/pgp-key", headers=h).status_code == 200
    with transaction(web.container.sessions, read_only=True) as s:
        assert get_user(s, get_pbx(s), "fabio").pgp_fingerprint == ""


@pytest.mark.parametrize("user", [RECEPTION, FAX_USER, OTHER_RECEPTION], ids=lambda u: u.name)
def test_nobody_else_sends_links_or_sets_keys(web: RunningWeb, user: Any) -> None:
    client, csrf = web.login(user)
    h = {"x-csrf-token": csrf}
    assert client.post(f"{USERS}/rita/reset", headers=h).status_code == 403
    assert client.put(f"{USERS}/rita/pgp-key", json={"key": "k"}, headers=h).status_code == 403
    assert client.delete(f"{USERS}/rita/pgp-key", headers=h).status_code == 403
