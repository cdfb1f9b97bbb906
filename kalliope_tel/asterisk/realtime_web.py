"""The HTTP side of realtime: where Asterisk's ``res_config_curl`` asks.

One small app on its own listener (``realtime_bind``, loopback by default),
never the public web's: the answers hold SIP digest hashes. Asterisk
authenticates with HTTP Basic (``res_curl.conf``'s ``userpwd``, a file
readable by Asterisk only); a wrong or missing one is refused with 401, a
body past ``MAX_BODY`` with 413. Several nodes on one host share the port
(SO_REUSEPORT): Asterisk's questions reach whichever is up.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import socket
from typing import TYPE_CHECKING

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kalliope_tel.asterisk.realtime import BadQuery, answer
from kalliope_tel.config import split_bind
from kalliope_tel.db.engine import transaction

if TYPE_CHECKING:
    from kalliope_tel.container import Container

log = structlog.get_logger(__name__)
MAX_BODY = 8192  # a question is a few criteria: ids of at most 80 characters


def basic_credentials(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def realtime_app(container: Container, username: str, password: str) -> Starlette:
    expected = basic_credentials(username, password).encode()

    async def ask(request: Request) -> PlainTextResponse:
        given = request.headers.get("authorization", "").encode()
        if not password or not hmac.compare_digest(given, expected):
            log.warning("asterisk.realtime_refused", peer=request.client.host if request.client else "")
            return PlainTextResponse("", status_code=401, headers={"www-authenticate": 'Basic realm="realtime"'})
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            return PlainTextResponse("", status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse("", status_code=413)
        family, operation = request.path_params["family"], request.path_params["operation"]

        def read() -> str:
            with transaction(container.sessions, read_only=True) as session:
                return answer(session, family, operation, body.decode("utf-8", "replace"))

        try:
            text = await asyncio.to_thread(read)
        except BadQuery as exc:
            log.warning("asterisk.realtime_bad_query", family=family, operation=operation, reason=str(exc))
            text = ""
        # One connection a question: on a kept-alive connection every answer
        # came about 40 ms late (the delayed-ACK signature; measured: 48 ms a
        # lookup, a reload of 1,000 cold hints 48 s; with this, 3.4 ms and 3.4 s).
        return PlainTextResponse(text, headers={"connection": "close"})

    return Starlette(routes=[Route("/realtime/{family}/{operation}", ask, methods=["POST", "GET"])])


def realtime_socket(bind: str) -> socket.socket:
    """The listener, shared with the other nodes of this host."""
    host, port = split_bind(bind, "realtime_bind")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock
