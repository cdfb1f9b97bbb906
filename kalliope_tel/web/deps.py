"""What every route gets: the caller (``Principal``), checked for role, PBX
and CSRF in one place, and a transaction to work in.

Routes are plain ``def`` functions: FastAPI runs them on its thread pool, so
database work never stalls the event loop that also carries calls.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from kalliope_tel.container import Container
from kalliope_tel.db.engine import transaction
from kalliope_tel.errors import KalliopeError
from kalliope_tel.oplog.services import Actor
from kalliope_tel.peers import LOOPBACK, Peers
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import Role, User
from kalliope_tel.web import access
from kalliope_tel.web.access import Principal

SESSION_COOKIE = "kt_session"
LOGIN_CSRF_COOKIE = "kt_login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def client_ip(request: Request) -> str:
    """The caller's address: the peer's, or, when the peer is a proxy we
    trust, the right-most address of X-Forwarded-For that is not one of our
    proxies. The left-most entry is whatever the client wrote; only the hops
    our own proxies appended can be believed."""
    peer = request.client.host if request.client else ""
    settings = container_of(request).settings
    if not settings.http_trust_forwarded or not _trusted(peer, settings.http_trusted_proxies):
        return peer[:64]
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, settings.http_trusted_proxies):
            return hop[:64]
    return (hops[0] if hops else peer)[:64]


@lru_cache(maxsize=64)
def _proxies(configured: tuple[str, ...]) -> Peers:
    return Peers.parse(configured, "trusted proxy") if configured else Peers(LOOPBACK)


def _trusted(address: str, proxies: list[str]) -> bool:
    return _proxies(tuple(proxies)).allows(address)


@contextmanager
def unit_of_work(request: Request, *, writes: bool | None = None) -> Iterator[Session]:
    """One transaction. A change (POST, PUT, PATCH, DELETE) takes SQLite's
    write lock first and waits its turn: a deferred transaction that reads and
    then writes fails at once ("database is locked", busy_timeout does not
    apply) when another connection committed in between, which on a busy
    node turned a login or a cleaning button into a 500."""
    if writes is None:
        writes = request.method not in SAFE_METHODS
    with transaction(container_of(request).sessions, read_only=not writes) as session:
        yield session


def current_principal(request: Request) -> Principal | None:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    with unit_of_work(request, writes=False) as session:
        principal = access.resolve(session, token)
    request.state.principal = principal
    return principal


class Refusal(KalliopeError):
    """A refusal of the web layer itself (not logged in, another PBX, no
    CSRF token), with its HTTP status, in the catalogue like any other."""

    def __init__(self, status: int, code: str, /, retry_after: int | None = None, **params: Any) -> None:
        super().__init__(code, **params)
        self.status = status
        self.retry_after = retry_after


def check_login_csrf(request: Request) -> None:
    """A form posted before any session (login, password reset): its page's
    token, cookie and header, must match."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected:
        raise Refusal(403, "web.login_csrf")
    check_csrf(request, expected)


def check_csrf(request: Request, expected: str) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, expected):
        raise Refusal(403, "web.csrf")


@dataclass(frozen=True)
class Caller:
    """An authorised request: who, in which PBX."""

    principal: Principal
    request: Request

    @property
    def pbx_id(self) -> int:
        return self.principal.pbx_id

    def pbx(self, session: Session) -> Pbx:
        pbx = session.get(Pbx, self.principal.pbx_id)
        if pbx is None:
            raise Refusal(404, "web.pbx_gone")
        return pbx

    @property
    def actor(self) -> Actor:
        """Who, for the log of operations."""
        return web_actor(self.request, self.principal.email)

    def user(self, session: Session) -> User:
        user = session.get(User, self.principal.user_id)
        if user is None:
            raise Refusal(401, "web.user_gone")
        return user


def web_actor(request: Request, email: str) -> Actor:
    """The log's actor for a request: the pages' own calls say "web", scripts "api"."""
    via = "web" if request.headers.get("x-requested-with") == "kt" else "api"
    return Actor(email, via, client_ip(request))


def allow(*roles: Role) -> Callable[..., Caller]:
    """A dependency: the caller holds one of ``roles`` in the PBX of the path
    (``{pbx}``); refuses anonymous callers (401), other PBXs and other roles
    (403), and changes without the session's CSRF token (403)."""

    def dependency(request: Request, pbx: Annotated[str, Path(max_length=40)]) -> Caller:
        principal = signed_in(request)
        # Another PBX's slug gets the same answer whether it exists or not.
        seated = principal.at(pbx)
        if seated is None or not seated.may(*roles):
            raise Refusal(403, "web.not_allowed")
        check_csrf(request, principal.csrf_token)
        return Caller(seated, request)

    return dependency


def signed_in(request: Request) -> Principal:
    """The caller, all the way in (password and, when owed, the second factor)."""
    principal = current_principal(request)
    if principal is None:
        raise Refusal(401, "web.log_in_first")
    if principal.stage is not access.Stage.IN:
        raise Refusal(401, "web.second_factor_first")
    return principal


def logged_in(request: Request) -> Principal:
    principal = signed_in(request)
    check_csrf(request, principal.csrf_token)
    return principal


def half_logged_in(request: Request) -> Principal:
    """The caller with a right password, whatever the second factor's stage
    (the second-factor step, the enrolment, the logout)."""
    principal = current_principal(request)
    if principal is None:
        raise Refusal(401, "web.log_in_first")
    check_csrf(request, principal.csrf_token)
    return principal


Receptionist = Annotated[Caller, Depends(allow(Role.RECEPTIONIST))]
FaxUser = Annotated[Caller, Depends(allow(Role.FAX))]
Admin = Annotated[Caller, Depends(allow())]  # administrators only
LoggedIn = Annotated[Principal, Depends(logged_in)]
HalfLoggedIn = Annotated[Principal, Depends(half_logged_in)]


def problem(exc: Exception) -> dict[str, Any]:
    return {"detail": str(exc)}
