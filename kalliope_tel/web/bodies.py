"""Request bodies: capped for every route, and a large one read only for a
caller who has shown who they are.

FastAPI reads (and spools to disk) a whole multipart body before any
dependency runs, so ``deps.allow`` would check the session after an
anonymous client had written all it liked. This gate sits in front of the
app, in plain ASGI:

- every body is capped: ``DEFAULT_LIMIT`` unless the route was registered
  with ``allow_large_body``; a ``Content-Length`` over the cap is answered
  413 before a byte is read, a streamed body is cut off with 413 the moment
  it crosses it;
- a route registered for large bodies first resolves the session cookie and
  checks the CSRF header and the PBX of the path, on a thread, and answers
  401/403 at once when they fail; the principal it found is kept for
  ``deps.current_principal`` (no second look-up).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser

from kalliope_tel import catalogue
from kalliope_tel.container import Container
from kalliope_tel.db.engine import transaction

DEFAULT_LIMIT = 256 << 10  # JSON of a form or a list: far below this
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class _Large:
    pattern: re.Pattern[str]
    limit: int


_LARGE: dict[str, _Large] = {}


def allow_large_body(template: str, limit: int) -> None:
    """Let the route at ``template`` (``/api/v1/pbx/{pbx}/...``) take bodies
    up to ``limit`` bytes, from callers with a session of that PBX."""
    pattern = "^" + re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template)) + "$"
    _LARGE[template] = _Large(re.compile(pattern), limit)


def limit_for(path: str) -> tuple[int, re.Match[str] | None]:
    for large in _LARGE.values():
        match = large.pattern.match(path)
        if match is not None:
            return large.limit, match
    return DEFAULT_LIMIT, None


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` as the body crosses the cap. An HTTPException,
    because FastAPI turns any other error while it reads a body into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "web.body_too_large")
        self.limit = limit
        self.params = {"limit": limit}


class BodyGate:
    def __init__(self, app: Callable[..., Awaitable[None]], container: Container) -> None:
        self.app = app
        self.container = container

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
            return
        limit, large = limit_for(scope["path"])
        if large is not None:
            refusal = await anyio.to_thread.run_sync(self._refusal, scope, large.groupdict().get("pbx"))
            if refusal is not None:
                await _answer(send, scope, *refusal)
                return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer(send, scope, 413, "web.body_declared_too_large", declared=declared, limit=limit)
            return
        started = False
        seen = 0
        read_all = declared == 0

        async def counting() -> MutableMapping[str, Any]:
            nonlocal seen, read_all
            message: MutableMapping[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                read_all = not message.get("more_body", False)
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def drained() -> bool:
            """Read and drop the rest of a body the app answered without
            reading (a refusal from a dependency), when it is small: a
            connection closed with unread bytes in its buffer is reset, and
            the reset can destroy the answer before the client reads it."""
            nonlocal seen, read_all
            while not read_all:
                message = await receive()
                if message["type"] != "http.request":
                    return False
                seen += len(message.get("body", b""))
                read_all = not message.get("more_body", False)
                if seen > DEFAULT_LIMIT:
                    return False
            return True

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not read_all and not await drained():
                # Answered before a large body was read: the server will
                # close this connection, so tell the client, or its next
                # request on it is reset.
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except BodyTooLarge as exc:
            if not started:
                await _answer(send, scope, 413, "web.body_too_large", limit=exc.limit)

    def _refusal(self, scope: MutableMapping[str, Any], pbx: str | None) -> tuple[int, str] | None:
        from kalliope_tel.web import access, deps

        headers = dict(scope.get("headers") or [])
        token = cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(deps.SESSION_COOKIE, "")
        if not token:
            return 401, "web.log_in_first"
        with transaction(self.container.sessions, read_only=True) as session:
            principal = access.resolve(session, token)
        if principal is None:
            return 401, "web.log_in_first"
        if principal.stage is not access.Stage.IN:
            return 401, "web.second_factor_first"
        seated = principal.at(pbx) if pbx is not None else principal
        if seated is None:
            return 403, "web.not_allowed"
        sent = headers.get(deps.CSRF_HEADER.encode(), b"").decode("latin-1")
        if not sent or not hmac.compare_digest(sent, seated.csrf_token):
            return 403, "web.csrf"
        scope.setdefault("state", {})["principal"] = seated
        return None


def _content_length(scope: MutableMapping[str, Any]) -> int | None:
    for key, value in scope.get("headers") or []:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Any, scope: MutableMapping[str, Any], status: int, code: str, **params: Any) -> None:
    """A refusal in the caller's language, before the app (and its handlers) ran."""
    from starlette.requests import Request

    from kalliope_tel.web.i18n import pick_language

    detail = catalogue.render(pick_language(Request(scope)), code, params)
    body = json.dumps({"detail": detail, "code": code}).encode()
    # Connection: close, so the client stops sending what we will not read.
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
