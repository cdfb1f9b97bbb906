"""``kalliope-tel serve``: run the engines and every enabled feature until SIGTERM.

Theory of operation:

* **Features** (``kalliope_tel.features``) declare what they bring; serve only
  iterates them: warm-ups first (loading spandsp during a call stalled the
  event loop), FastAGI handlers on the one router, Stasis applications on
  every Asterisk link, then their background jobs.
* **Links**: one per Asterisk this node drives, the default one (settings or
  lab) and each server that PBXs are bound to (``pbx servers add``). Each has
  its own ARI client and runtime; calls the dialplan sends to
  ``Stasis(<ari_app>,...)`` arrive on the shared app name, and calls this node
  originates use an app of its own (Asterisk hands an app's events to one
  websocket only, the last to subscribe). With ``ari_outbound_bind`` set,
  the shared app's calls come instead over websockets Asterisk opens to this
  node (``asterisk.ari.outbound``), so several nodes behind a load balancer
  share one Asterisk; the node's own app keeps its inbound websocket.
* **Supervision**: the ARI runtimes, AMI connections, feature jobs, the
  loop-lag monitor and the heartbeat all run under one ``Supervisor``: a task
  that crashes or returns is restarted with backoff and counted; a wrong
  password stops serve with the reason. The node's row in ``serve_node``
  (written every few seconds) is what ``doctor`` shows.

Start order: FastAGI first (the dialplan may call it at once), then ARI and
AMI; both retry by themselves, so serve starts while Asterisk is still booting
and runs through its restarts. Shutdown: stop the jobs (claims are
transactions, a cancelled tick leaves nothing half-done), stop accepting
FastAGI with a grace period for requests in progress, let calls in progress
finish (features' ``drain``), then close the links.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import text

from kalliope_tel.asterisk.ami.client import AmiClient
from kalliope_tel.asterisk.ami.protocol import AmiAuthError, AmiError
from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.asterisk.ari.errors import AriAuthError, AriError
from kalliope_tel.asterisk.ari.outbound import OutboundListener
from kalliope_tel.asterisk.ari.runtime import AriRuntime
from kalliope_tel.asterisk.autoapply import ConfigApplier
from kalliope_tel.asterisk.endpoints import AsteriskEndpoints, realtime_listener, server_endpoints
from kalliope_tel.asterisk.outbound_conf import outbound_password
from kalliope_tel.asterisk.realtime_web import realtime_app, realtime_socket
from kalliope_tel.container import Container
from kalliope_tel.db.engine import transaction
from kalliope_tel.features import AsteriskLink, ServeContext
from kalliope_tel.looplag import LoopLagMonitor
from kalliope_tel.nodes import gone_after, gone_nodes, heartbeat_loop, set_gone_after, write_status
from kalliope_tel.supervisor import Supervisor
from kalliope_tel.tenancy.models import AsteriskServer
from kalliope_tel.tenancy.services import list_asterisk_servers, list_pbxs
from kalliope_tel.tuning import settle_heap
from kalliope_tel.web.server import run_http

log = structlog.get_logger(__name__)
# Seconds that calls in progress get to finish at shutdown.
SHUTDOWN_GRACE = 20.0
# How often each node looks for channels that dead nodes left in Stasis.
SWEEP_EVERY = 15.0


@dataclass
class ServeState:
    """What a running serve holds; handed to ``started`` (tests, tooling)."""

    context: ServeContext
    supervisor: Supervisor
    loop_lag: LoopLagMonitor
    amis: dict[str, AmiClient]
    stop: asyncio.Event

    def status(self) -> dict[str, Any]:
        extra = {name: figure() for name, figure in self.context.status.items()}
        return {
            "tasks": self.supervisor.status(),
            "loop_lag": self.loop_lag.figures(),
            "links": {link.label: link.client.connected.is_set() for link in self.context.links},
            "ami": {label: ami.connected.is_set() for label, ami in self.amis.items()},
            **extra,
        }


def node_name(container: Container) -> str:
    return container.settings.node_name or f"{socket.gethostname()}:{os.getpid()}"


def _servers_in_use(container: Container) -> list[AsteriskServer]:
    """Asterisk servers that at least one PBX is bound to (besides the default)."""
    with transaction(container.sessions) as session:
        used = {p.asterisk_server_id for p in list_pbxs(session) if p.asterisk_server_id}
        return [s for s in list_asterisk_servers(session) if s.id in used]


def _log_tasks() -> None:
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=8)
        where = [f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno} {f.f_code.co_name}" for f in frames]
        log.warning("serve.task", task=task.get_name(), where=where)


def node_app_name(ari_app: str, node: str) -> str:
    """The Stasis app a node originates under. Asterisk delivers an app's
    events to one websocket only (the last to subscribe), so each node has
    its own; the shared name only receives calls the dialplan sends."""
    return f"{ari_app}-{re.sub(r'[^A-Za-z0-9_-]', '-', node)}"


def build_links(container: Container, node: str) -> list[AsteriskLink]:
    settings = container.settings
    node_app = node_app_name(settings.ari_app, node)
    targets: list[tuple[str, AsteriskEndpoints]] = [("", container.endpoints)]
    targets += [(s.name, server_endpoints(settings, s)) for s in _servers_in_use(container)]
    # Outbound mode: Asterisk opens the shared app's websockets to us (see
    # asterisk.ari.outbound); subscribing to it as well would take it over.
    apps = [node_app] if settings.ari_outbound_bind else [settings.ari_app, node_app]
    links = []
    for name, ep in targets:
        client = AriClient(ep.ari_url, ep.ari_username, ep.ari_password, apps=apps)
        links.append(AsteriskLink(name, ep, client, AriRuntime(client), node_app))
    return links


def build_outbound(container: Container, links: list[AsteriskLink]) -> OutboundListener | None:
    settings = container.settings
    if not settings.ari_outbound_bind:
        return None

    async def database_reachable() -> bool:
        def check() -> None:
            with transaction(container.sessions, read_only=True) as session:
                session.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(check), 5.0)
        except Exception:  # any database failure makes the node unhealthy
            return False
        return True

    username = settings.ari_outbound_username
    return OutboundListener(
        settings.ari_outbound_bind,
        {link.label: (username, outbound_password(settings, link.name)) for link in links},
        {link.label: link.runtime for link in links},
        health=database_reachable,
    )


async def _sweep_dead_nodes(container: Container, links: list[AsteriskLink], node: str) -> None:
    """Hang up channels left in Stasis by nodes that died.

    A node's media and originated channels sit in its own app; when the node
    dies (SIGKILL, power) its websocket goes with it and Asterisk keeps those
    channels in Stasis with nobody to end them (externalMedia legs streaming
    to a dead port, calls in silence). Once the node counts as gone (the same
    rule as its fax slots and claimed jobs), any live node ends them, on
    every Asterisk it drives."""
    app = container.settings.ari_app

    def dead_apps() -> set[str]:
        with transaction(container.sessions, read_only=True) as session:
            return {node_app_name(app, n) for n in gone_nodes(session, gone_after()) if n != node}

    while True:
        await asyncio.sleep(SWEEP_EVERY)
        dead = await asyncio.to_thread(dead_apps)
        for link in links if dead else []:
            if not link.client.connected.is_set():
                continue
            try:
                channels = await link.client.list_channels()
            except AriError:
                continue
            for channel in channels:
                owner = channel.dialplan.app_data.split(",")[0]
                if channel.dialplan.app_name == "Stasis" and owner in dead:
                    log.warning("ari.dead_node_channel_hung_up", channel=channel.name, app=owner)
                    with contextlib.suppress(AriError):
                        await link.client.hangup(channel.id)


async def _keep_ami(ami: AmiClient, stop: asyncio.Event) -> None:
    """Keep trying the first AMI login, then hold it (the client reconnects by itself)."""
    delay = 0.5
    while not stop.is_set():
        try:
            await ami.connect()
            break
        except AmiAuthError:
            raise
        except AmiError as exc:
            log.warning("serve.ami_waiting", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 8.0)
    # Held until the supervisor cancels it: returning would read as a crash.
    await asyncio.Event().wait()


async def serve(
    container: Container,
    *,
    ready: Callable[[], None] | None = None,
    started: Callable[[ServeState], None] | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    set_gone_after(container.settings.node_gone_seconds)
    if container.settings.debug_slow_callback_ms:
        loop.set_debug(True)
        loop.slow_callback_duration = container.settings.debug_slow_callback_ms / 1000
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # 'kill -USR1 <pid>': log what every task is waiting on (a node that will
    # not stop, or stalls, says where).
    loop.add_signal_handler(signal.SIGUSR1, _log_tasks)

    features = container.features
    for feature in features:
        if feature.warm_up is not None:
            await asyncio.to_thread(feature.warm_up)
    agi = container.agi_server()
    await agi.start()
    node = node_name(container)
    links = build_links(container, node)
    ctx = ServeContext(container, node, links)
    for link in links:
        for feature in features:
            if feature.stasis is not None:
                for name, app in feature.stasis(ctx, link).items():
                    link.runtime.register(name, app)
                    link.apps[name] = app
    supervisor = Supervisor(fatal=(AriAuthError, AmiAuthError))
    lag = LoopLagMonitor()
    amis: dict[str, AmiClient] = {}
    state = ServeState(ctx, supervisor, lag, amis, stop)
    outbound = build_outbound(container, links)
    if outbound is not None:
        # Before the jobs: calls the dialplan sends may arrive at once.
        supervisor.add("ari-outbound", outbound.run)
        ctx.status["ari_outbound"] = outbound.status
        ctx.parts["ari_outbound"] = outbound
    for link in links:
        ep = link.endpoints
        amis[link.label] = link.ami = ami = AmiClient(ep.ami_host, ep.ami_port, ep.ami_username, ep.ami_password)
        supervisor.add(f"ari@{link.label}", link.runtime.run)
        supervisor.add(f"ami@{link.label}", lambda a=ami: _keep_ami(a, stop))  # type: ignore[misc]
    job_names = []
    for feature in features:
        for job in feature.jobs(ctx) if feature.jobs is not None else []:
            supervisor.add(job.name, job.run)
            job_names.append(job.name)
    if container.settings.asterisk_auto_apply:
        for link in links:
            applier = ConfigApplier(container, link, node)
            supervisor.add(f"asterisk-config@{link.label}", applier.run)
            ctx.status[f"asterisk_config@{link.label}"] = applier.applied.as_dict
    if container.settings.pjsip_accounts == "realtime":
        # Before the appliers expire anything: Asterisk asks again at once.
        bind, username, password = realtime_listener(container.settings)
        realtime = realtime_app(container, username, password)
        realtime_sock = realtime_socket(bind)
        supervisor.add("asterisk-realtime", lambda: run_http(realtime, realtime_sock))
    supervisor.add("sweep-dead-nodes", lambda: _sweep_dead_nodes(container, links, node))
    supervisor.add("loop-lag", lag.run)
    supervisor.add("heartbeat", lambda: heartbeat_loop(container.sessions, node, state.status))
    settle_heap()
    log.info(
        "serve.started",
        node=node,
        features=[f.name for f in features],
        asterisk=[f"{link.label}={link.endpoints.source}" for link in links],
        agi_port=agi.port,
        ari_mode="outbound" if outbound is not None else "inbound",
    )
    if ready is not None:
        ready()
    if started is not None:
        started(state)
    stopper = asyncio.create_task(stop.wait())
    fatal = asyncio.create_task(supervisor.wait_fatal())
    try:
        done, _ = await asyncio.wait([stopper, fatal], return_when=asyncio.FIRST_COMPLETED)
        if fatal in done:
            raise fatal.result()
    finally:
        log.info("serve.stopping", node=node)
        stop.set()
        if outbound is not None:
            outbound.stop_accepting()  # the load balancer sends new calls elsewhere
        await supervisor.stop(job_names)
        await agi.stop(grace=10.0)
        # Calls in progress finish and record their outcome; any still running
        # after the grace period are recovered by another node's watchdog.
        for feature in features:
            if feature.drain is not None:
                await feature.drain(ctx, SHUTDOWN_GRACE)
        # Stop supervising before closing the links, or their tasks' ends
        # would be taken for crashes and restarted.
        await supervisor.stop()
        for link in links:
            await link.runtime.aclose()
            await link.client.aclose()
        for ami in amis.values():
            await ami.aclose()
        for task in (stopper, fatal):
            task.cancel()
        await asyncio.gather(stopper, fatal, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(write_status, container.sessions, node, state.status(), stopped=True)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            loop.remove_signal_handler(sig)
        log.info("serve.stopped", node=node)
