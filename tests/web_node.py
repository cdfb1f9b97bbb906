"""A web node for tests: the production app, change feed and uvicorn, in a
thread of the test process, on a free loopback port; and logged-in clients."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import make_engine, make_session_factory, transaction
from kalliope_tel.web.feature import build_node, listen_socket
from kalliope_tel.web.server import run_http
from tests.web_support import PASSWORD, WebUser, seed_web_hotel


class RunningWeb:
    def __init__(self, database_url: str, data_dir: Path, **settings: object) -> None:
        self.container = Container(Settings(database_url=database_url, data_dir=data_dir, **settings))  # type: ignore[arg-type]
        self.node = build_node(self.container, "test-web")
        sock = listen_socket("127.0.0.1:0")
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self, sock: object) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._tasks = [
                asyncio.create_task(run_http(self.node.app, sock)),  # type: ignore[arg-type]
                asyncio.create_task(self.node.feed.run()),
            ]
            self._ready.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        self._loop.run_until_complete(main())

    def stop(self) -> None:
        for task in self._tasks:
            self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(15)
        self.container.close()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20)

    def login(self, user: WebUser, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        """A client logged in as ``user``, and its CSRF token."""
        client = self.client()
        client.get("/login")
        response = client.post(
            "/api/v1/session",
            json={"email": user.email, "password": password},
            headers={"x-csrf-token": client.cookies["kt_login_csrf"]},
        )
        assert response.status_code == 200, response.text
        return client, str(response.json()["csrf_token"])


@contextmanager
def seeded_web(
    db_backend: str, folder: Path, seed: Callable[[Any], None] = seed_web_hotel, **settings: object
) -> Iterator[RunningWeb]:
    """A fresh database of ``db_backend``, migrated and seeded, and a web node on it."""
    from tests.conftest import drop_pg_database, new_database_url

    url, handle = new_database_url(db_backend, folder)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        seed(session)
    engine.dispose()
    node = RunningWeb(url, folder, **settings)
    try:
        yield node
    finally:
        node.stop()
        if handle:
            drop_pg_database(str(handle))


def browser_login(chromium: Any, web: RunningWeb, email: str, *, lang: str = "en", width: int = 1280,
                  height: int = 800, landing: str = r"/pbx/default/panel$") -> Any:  # fmt: skip
    """A Chromium page logged in as ``email``, arrived on its home page."""
    page = chromium.new_context(locale=lang, viewport={"width": width, "height": height}).new_page()
    page.goto(web.url + "/login")
    page.get_by_label(re.compile("E-mail|Indirizzo")).fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url(re.compile(landing))
    return page


def assert_refused(web: RunningWeb, user: WebUser, routes: list[tuple[str, str]], pages: tuple[str, ...]) -> None:
    """``user`` gets 403 from each of ``routes`` (method, path under the
    default PBX's API) and each of ``pages`` (under /pbx/default/)."""
    client, csrf = web.login(user)
    for method, path in routes:
        body = {} if method != "GET" else None
        answer = client.request(method, "/api/v1/pbx/default" + path, json=body, headers={"x-csrf-token": csrf})
        assert answer.status_code == 403, (method, path, answer.status_code)
    for page in pages:
        assert client.get(f"/pbx/default/{page}").status_code == 403, page
