"""The web feature: HTTP (the REST API, the pages of every feature) and the
change feed that keeps open panels live, inside ``serve``."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from kalliope_tel.checks import Check
from kalliope_tel.config import split_bind
from kalliope_tel.features.base import Feature, Job, ServeContext

if TYPE_CHECKING:
    from fastapi import FastAPI

    from kalliope_tel.changes.feed import ChangeFeed, Hub
    from kalliope_tel.container import Container

log = structlog.get_logger(__name__)


def listen_socket(bind: str) -> socket.socket:
    host, port = split_bind(bind, "http_bind")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def _poll_seconds(container: Container) -> float:
    configured = container.settings.live_poll_seconds
    if configured:
        return configured
    return 0.25 if container.engine.dialect.name == "sqlite" else 5.0


def _listen_url(container: Container) -> str | None:
    url = container.engine.url
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class WebNode:
    """What one node serves: the app, and the feed and hub that keep its panels live."""

    app: FastAPI
    hub: Hub
    feed: ChangeFeed


def build_node(container: Container, node: str) -> WebNode:
    from kalliope_tel.changes.feed import ChangeFeed, Hub
    from kalliope_tel.web.app import build_app

    hub = Hub()
    feed = ChangeFeed(container.engine, hub, poll=_poll_seconds(container), listen_url=_listen_url(container))
    return WebNode(build_app(container, node=node, hub=hub), hub, feed)


def jobs(ctx: ServeContext) -> list[Job]:
    from kalliope_tel.web.resets_web import sender_loop
    from kalliope_tel.web.server import run_http

    container = ctx.container
    web = build_node(container, ctx.node)
    # Bound now, not in the job: a port in use stops serve at start with the reason.
    sock = listen_socket(container.settings.http_bind)
    port = sock.getsockname()[1]
    ctx.parts.update(http_port=port, live_hub=web.hub, live_feed=web.feed, web_app=web.app)
    ctx.status["http"] = lambda: {"port": port, "panels": web.hub.subscribers, "batches": web.hub.batches}
    log.info("web.listening", bind=container.settings.http_bind, port=port)
    return [
        Job("http", lambda: run_http(web.app, sock)),
        Job("live-feed", web.feed.run),
        Job("web-housekeeping", lambda: housekeeping(container)),
        Job("password-resets", lambda: sender_loop(container, ctx.node)),
    ]


async def housekeeping(container: Container, every: float = 3600.0) -> None:
    """Hourly, on every node (deleting twice is harmless): expired sessions, old audit entries."""
    import asyncio

    from kalliope_tel.db.engine import transaction
    from kalliope_tel.web.access import prune

    def once() -> tuple[int, int]:
        with transaction(container.sessions) as session:
            return prune(session, container.settings.web_audit_days)

    while True:
        sessions, entries = await asyncio.to_thread(once)
        if sessions or entries:
            log.info("web.pruned", sessions=sessions, audit_entries=entries)
        await asyncio.sleep(every)


def doctor(container: Container) -> list[Check]:
    try:
        host, port = split_bind(container.settings.http_bind, "http_bind")
    except ValueError as exc:
        return [Check("web", False, str(exc), "set KALLIOPE_HTTP_BIND")]
    checks = [Check("web", True, f"panels and API on http://{host}:{port}/ (when serve runs)")]
    if host not in ("127.0.0.1", "::1", "localhost") and not container.settings.http_secure_cookies:
        checks.append(
            Check(
                "web-tls",
                False,
                f"the panels listen on {host}, beyond loopback, and cookies are not marked Secure",
                "put a TLS reverse proxy in front and set KALLIOPE_HTTP_SECURE_COOKIES=true",
            )
        )
    return checks


FEATURE = Feature(
    name="web",
    summary="REST API, receptionist panel and fax pages, with live updates",
    jobs=jobs,
    doctor=doctor,
    benches={"logins": "kalliope_tel.web.bench_logins:bench_command"},
)
