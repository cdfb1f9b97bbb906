"""The web application: the JSON API under /api, the pages, and every
enabled feature's routes (``Feature.web``).

Theory of operation: ``build_app`` makes one FastAPI app per ``serve``
node. Routes are thin adapters: authorise (``deps.allow``), open one
transaction, call a service, answer JSON. Errors of the services become
HTTP statuses here, once, by kind (not found 404, conflict 409, not allowed
403, other refusals 400). Every change made through the API is written to
the audit with the caller and their address.
"""

from __future__ import annotations

import functools
import importlib
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import text

from kalliope_tel.container import Container
from kalliope_tel.users.models import Role
from kalliope_tel.web import access, deps, errors, navigation
from kalliope_tel.web.access import LoginRefused
from kalliope_tel.web.bodies import BodyGate
from kalliope_tel.web.i18n import LANG_COOKIE, LANGUAGES, MESSAGES, pick_language

log = structlog.get_logger(__name__)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
API_VERSION = "v1"

SECURITY_HEADERS = {
    # No inline script anywhere: page data travels in <script type="application/json">.
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


# ---------------------------------------------------------------- pages
def page(request: Request, template: str, principal: access.Principal | None, **extra: Any) -> Response:
    """A page in the caller's language, with the data its script needs."""
    lang = pick_language(request)
    config = {
        "lang": lang,
        "messages": MESSAGES[lang],
        "csrf": principal.csrf_token if principal else "",
        "pbx": principal.pbx_slug if principal else "",
        "timezone": principal.timezone if principal else "UTC",
        "roles": sorted(principal.roles) if principal else [],
        **extra.pop("config", {}),
    }
    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": MESSAGES[lang],
            "lang": lang,
            "languages": LANGUAGES,
            "principal": principal,
            "nav": navigation.navigation(request, principal) if principal and _inside(principal) else [],
            "subnav": navigation.administration(request, principal) if principal and _inside(principal) else [],
            "config": config,
            **extra,
        },
    )
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


def _inside(principal: access.Principal) -> bool:
    return principal.stage is access.Stage.IN


def pbx_page(request: Request, pbx: str, template: str, *roles: Role, **extra: Any) -> Response:
    """A page of PBX ``pbx`` for callers with one of ``roles`` there: the login
    page for anonymous callers, 403 for other roles and other PBXs."""
    principal = deps.current_principal(request)
    if principal is None or principal.stage is not access.Stage.IN:
        return RedirectResponse("/login", status_code=303)
    seated = principal.at(pbx)
    if seated is None or not seated.may(*roles):
        return refused_page(request, principal, "web.page_forbidden")
    return page(request, template, seated, **extra)


def form_page(request: Request, template: str) -> Response:
    """A page whose form is posted before any session (login, password
    reset): a fresh token in its config and in a strict cookie, checked by
    ``deps.check_login_csrf``."""
    token = secrets.token_urlsafe(32)
    response = page(request, template, None, config={"login_csrf": token})
    settings = deps.container_of(request).settings
    response.set_cookie(
        deps.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=settings.http_secure_cookies
    )
    return response


def refused_page(request: Request, principal: access.Principal, reason: str) -> Response:
    """A page, not bare text: the navigation (what the user may open) and logout stay."""
    response = page(request, "refused.html", principal, reason=reason)
    response.status_code = 403
    return response


# ---------------------------------------------------------------- core routes
class Credentials(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)


def _me(principal: access.Principal) -> dict[str, Any]:
    return {
        "name": principal.name,
        "email": principal.email,
        "full_name": principal.full_name,
        "pbx": principal.pbx_slug,
        "pbx_name": principal.pbx_name,
        "timezone": principal.timezone,
        "roles": sorted(principal.roles),
        "csrf_token": principal.csrf_token,
        "stage": str(principal.stage),
        "pbxs": [{"pbx": s.pbx_slug, "name": s.pbx_name, "roles": sorted(s.roles)} for s in principal.seats],
        "companies": [
            {"id": c.company_id, "name": c.name, "kind": str(c.kind), "console": c.console, "manager": c.manager}
            for c in principal.companies
        ],
        "company": principal.company_id,
        "view": principal.view_company_id,
    }


LOGINS_AT_ONCE = 1


def _login_limiter(request: Request) -> anyio.CapacityLimiter:
    state = request.app.state
    if getattr(state, "login_limiter", None) is None:  # made in the loop that uses it
        state.login_limiter = anyio.CapacityLimiter(LOGINS_AT_ONCE)
    limiter: anyio.CapacityLimiter = state.login_limiter
    return limiter


def core_router() -> APIRouter:
    router = APIRouter()

    @router.get("/api/health", tags=["core"])
    def health(request: Request) -> JSONResponse:
        """For load balancers: 200 while this node reaches the database, else 503."""
        try:
            with deps.unit_of_work(request) as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # any database failure makes the node unhealthy
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "node": request.app.state.node})

    @router.post(f"/api/{API_VERSION}/session", tags=["core"])
    async def log_in(request: Request, response: Response, body: Credentials) -> dict[str, Any]:
        """Log in: opens a session (HttpOnly cookie) and returns the CSRF token for later changes.

        The login form's CSRF token (cookie and header, set by /login) must match."""
        deps.check_login_csrf(request)
        ip = deps.client_ip(request)
        settings = deps.container_of(request).settings
        limits = access.LoginLimits(
            pair=settings.login_max_pair_guesses, address=settings.login_max_address_guesses,
            account=settings.login_max_account_guesses, window=timedelta(minutes=settings.login_window_minutes),
        )  # fmt: skip
        check = functools.partial(
            access.login, deps.container_of(request).sessions, body.email, body.password, ip=ip, limits=limits
        )
        try:
            # One password hash at a time per node (about 0.1 s of CPU, so 10
            # logins/s), the rest waiting here rather than on the thread pool:
            # a flood then neither takes every core from the calls nor crowds
            # SQLite's write lock (a writer waited 950 ms behind 16 logins at
            # once, 140 ms behind two per node, 28 ms behind one: see
            # tests/integration/test_login_limits.py).
            token, principal = await anyio.to_thread.run_sync(check, limiter=_login_limiter(request))
        except LoginRefused as exc:  # the refusal is committed to the audit first
            log.info("web.login_refused", ip=ip)
            raise deps.Refusal(401, exc.code or "login.wrong") from None
        response.set_cookie(
            deps.SESSION_COOKIE,
            token,
            max_age=int(access.SESSION_LIFETIME.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=settings.http_secure_cookies,
            path="/",
        )
        response.delete_cookie(deps.LOGIN_CSRF_COOKIE, path="/")
        log.info("web.login", account=principal.account_id, stage=str(principal.stage), ip=ip)
        return _me(principal)

    @router.delete(f"/api/{API_VERSION}/session", tags=["core"])
    def log_out(request: Request, response: Response, principal: deps.HalfLoggedIn) -> dict[str, Any]:
        """Log out: the session ends on every node."""
        with deps.unit_of_work(request) as session:
            access.logout(session, principal, ip=deps.client_ip(request))
        response.delete_cookie(deps.SESSION_COOKIE, path="/")
        return {"logged_out": True}

    @router.get(f"/api/{API_VERSION}/me", tags=["core"])
    def me(principal: deps.LoggedIn) -> dict[str, Any]:
        """Who is logged in: name, PBX, roles, and the CSRF token of the session."""
        return _me(principal)

    @router.get("/login", include_in_schema=False)
    def login_page(request: Request) -> Response:
        return form_page(request, "login.html")

    @router.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request) -> Response:
        """The OpenAPI document as a page (no scripts from elsewhere), behind login."""
        principal = deps.current_principal(request)
        if principal is None or principal.stage is not access.Stage.IN:
            return RedirectResponse("/login", status_code=303)
        groups: dict[str, list[tuple[str, str, str]]] = {}
        for path, operations in request.app.openapi()["paths"].items():
            for method, operation in operations.items():
                summary = (operation.get("description") or operation.get("summary") or "").split("\n")[0]
                groups.setdefault(operation.get("tags", ["core"])[0], []).append((method.upper(), path, summary))
        return page(request, "api_docs.html", principal, groups=sorted(groups.items()))

    @router.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        # Browsers ask for it whatever the page links; the same icon as the pages'.
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @router.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        principal = deps.current_principal(request)
        if principal is None or principal.stage is not access.Stage.IN:
            return RedirectResponse("/login", status_code=303)
        landing = navigation.home(request, principal) if principal.seats else None
        if landing is None and principal.companies:
            landing = "/console"  # a Console member with no PBX of their own
        if landing is None:
            return refused_page(request, principal, "web.no_pages")
        return RedirectResponse(landing, status_code=303)

    return router


# ---------------------------------------------------------------- middleware
class WebMiddleware:
    """Security headers on every response, and every change made through the
    API (method, path, status, caller, address) written to the audit.

    Plain ASGI, not ``BaseHTTPMiddleware``: the event streams of the live
    panels pass through untouched."""

    def __init__(self, app: Callable[..., Awaitable[None]], container: Container) -> None:
        self.app = app
        self.container = container

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith("/api/")
        status = {"code": 500}

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = dict(SECURITY_HEADERS)
                if is_api:
                    extra["cache-control"] = "no-store"
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present]
                message["headers"] = headers
            await send(message)

        audited = scope["method"] not in deps.SAFE_METHODS and scope["path"].startswith("/api/v1/pbx/")
        try:
            await self.app(scope, receive, sending)
        finally:
            principal = scope.get("state", {}).get("principal") if audited else None
            if principal is not None:
                await anyio.to_thread.run_sync(self._audit, scope, principal, status["code"])

    def _audit(self, scope: MutableMapping[str, Any], principal: access.Principal, code: int) -> None:
        from kalliope_tel.db.engine import transaction

        # The caller's address as the login audit has it (X-Forwarded-For when trusted).
        ip = deps.client_ip(Request(scope))
        with transaction(self.container.sessions) as session:
            access.audit(
                session, f"{scope['method']} {scope['path']}", code < 400, ip=ip,
                login=principal.email.lower(), account_id=principal.account_id, pbx_id=principal.pbx_id or None,
                detail=str(code),
            )  # fmt: skip


# ---------------------------------------------------------------- the app
# The core's own pages and routes (people and accounts), beside the features'.
CORE_WEB = (
    "kalliope_tel.users.web:router",
    "kalliope_tel.web.admin_hub:router",
    "kalliope_tel.web.resets_web:router",
    "kalliope_tel.web.second_factor_web:router",
)


def feature_routers(container: Container) -> list[APIRouter]:
    routers = []
    targets = [*CORE_WEB, *(f.web for f in container.features if f.web is not None)]
    for target in targets:
        module, _, attr = target.partition(":")
        routers.append(getattr(importlib.import_module(module), attr)(container))
    return routers


def build_app(container: Container, *, node: str = "", hub: Any = None) -> FastAPI:
    app = FastAPI(
        title="kalliope-tel",
        version=API_VERSION,
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI loads scripts from elsewhere; the document is at /api/openapi.json
        redoc_url=None,
    )
    app.state.container = container
    app.state.node = node
    app.state.hub = hub
    app.include_router(core_router())
    for router in feature_routers(container):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    errors.install(app)

    # Added first, so it runs inside WebMiddleware: its refusals get the
    # security headers too.
    app.add_middleware(BodyGate, container=container)
    app.add_middleware(WebMiddleware, container=container)
    return app
