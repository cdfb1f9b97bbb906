"""Bodies from strangers on a real uvicorn: a large upload is read only for a
caller who has shown a session of that PBX and its CSRF token, every body
is capped, and a refusal comes before the body is read."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kalliope_tel.db import migrate
from kalliope_tel.db.engine import make_engine, make_session_factory, transaction
from kalliope_tel.web.bodies import DEFAULT_LIMIT
from tests.conftest import new_database_url
from tests.web_node import RunningWeb
from tests.web_support import FAX_USER, OTHER_RECEPTION, RECEPTION, seed_web_hotel

pytestmark = [pytest.mark.integration]
SEND = "/api/v1/pbx/default/fax/send"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    data_dir = tmp_path_factory.mktemp("web")
    url, _ = new_database_url("sqlite", data_dir)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        seed_web_hotel(session)
    engine.dispose()
    node = RunningWeb(url, data_dir)
    yield node
    node.stop()


def _raw(web: RunningWeb, head: str, body: bytes = b"") -> tuple[int, bytes, int]:
    """Send ``head`` (and ``body``), then read the answer: (status, body, bytes
    of the body the server had taken when it answered, as far as we sent)."""
    host, port = web.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1], len(body)


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def _head(path: str, length: int | None, *extra: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: multipart/form-data; boundary=xyz"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return "\r\n".join([*lines, *extra]) + "\r\n"


def test_an_anonymous_gigabyte_upload_is_refused_before_its_body(web: RunningWeb) -> None:
    # Declared: 1 GiB. Not one byte of it sent, and the answer is already there.
    status, body, sent = _raw(web, _head(SEND, 1 << 30))
    assert (status, sent) == (401, 0) and b"log in first" in body
    # Streamed, no length declared: the same, at once.
    status, body, sent = _raw(web, _head(SEND, None))
    assert (status, sent) == (401, 0)


def test_a_session_of_another_pbx_or_without_its_token_reads_no_body(web: RunningWeb) -> None:
    client, csrf = web.login(OTHER_RECEPTION)
    cookie = f"Cookie: kt_session={client.cookies['kt_session']}"
    status, body, _ = _raw(web, _head(SEND, 1 << 30, cookie, f"X-CSRF-Token: {csrf}"))
    assert status == 403 and b"not allowed" in body
    mine, _ = web.login(FAX_USER)
    status, body, _ = _raw(web, _head(SEND, 1 << 30, f"Cookie: kt_session={mine.cookies['kt_session']}"))
    assert status == 403 and b"CSRF" in body


def test_a_logged_in_upload_over_the_cap_is_refused_at_once(web: RunningWeb) -> None:
    client, csrf = web.login(FAX_USER)
    cookie = f"Cookie: kt_session={client.cookies['kt_session']}"
    status, body, sent = _raw(web, _head(SEND, 2 << 30, cookie, f"X-CSRF-Token: {csrf}"))
    assert (status, sent) == (413, 0) and b"at most" in body


def test_every_other_body_is_capped_small(web: RunningWeb) -> None:
    client, csrf = web.login(RECEPTION)
    too_big = b'{"clean": false, "pad": "' + b"x" * DEFAULT_LIMIT + b'"}'
    declared = client.put("/api/v1/pbx/default/rooms/103/cleaning", content=too_big,
                          headers={"x-csrf-token": csrf, "content-type": "application/json"})  # fmt: skip
    assert declared.status_code == 413

    def stream() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        for n in range(0, len(too_big), 8192):
            yield too_big[n : n + 8192]

    streamed = client.put("/api/v1/pbx/default/rooms/103/cleaning", content=stream(),
                          headers={"x-csrf-token": csrf, "content-type": "application/json"})  # fmt: skip
    assert streamed.status_code == 413
    # Anonymous, on the login route (no session needed there): capped too.
    with httpx.Client(base_url=web.url) as anonymous:
        assert anonymous.post("/api/v1/session", content=too_big).status_code == 413
    # Within the cap, the same change goes through.
    done = client.put("/api/v1/pbx/default/rooms/103/cleaning", json={"clean": False}, headers={"x-csrf-token": csrf})
    assert done.status_code == 200


def test_a_real_upload_still_passes(web: RunningWeb, tmp_path: Path) -> None:
    from tests.web_support import write_pdf

    client, csrf = web.login(FAX_USER)
    pdf = write_pdf(tmp_path / "letter.pdf", pages=1)
    with pdf.open("rb") as f:
        sent = client.post(SEND, data={"instance": "office", "number": "601"},
                           files={"documents": ("letter.pdf", f, "application/pdf")},
                           headers={"x-csrf-token": csrf})  # fmt: skip
    assert sent.status_code == 201, sent.text


def test_a_refusal_before_a_small_body_is_read_drains_it_and_keeps_the_connection(web: RunningWeb) -> None:
    """A dependency refuses (another PBX) before the route reads its body: the gate reads and drops the
    small body first, so the connection stays usable; closed with the bytes unread it was reset, and the
    reset destroyed the answer on the client's side now and then (CI, twice)."""
    client, csrf = web.login(OTHER_RECEPTION)
    padding = {"padding": "x" * (100 << 10)}
    for _ in range(5):  # the same connection, again and again
        answer = client.request("DELETE", "/api/v1/pbx/default/mail2fax/boxes/x", json=padding,
                                headers={"x-csrf-token": csrf})  # fmt: skip
        assert answer.status_code == 403 and answer.json()["code"] == "web.not_allowed"
        assert answer.headers.get("connection") != "close"
