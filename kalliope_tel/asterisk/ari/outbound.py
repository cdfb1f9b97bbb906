"""ARI outbound websockets: Asterisk connects to us (Asterisk 22.5 and later).

Theory of operation:

* ``ari.conf`` declares an ``outbound_websocket`` for the shared app
  (``ari_app``) and ``websocket_client.conf`` says where Asterisk connects:
  this listener, or a load balancer in front of several nodes. With
  ``connection_type = per_call_config`` Asterisk opens one websocket per call
  when the dialplan runs ``Stasis(<ari_app>,...)`` and closes it when the call
  leaves Stasis, so a load balancer spreads calls over nodes and a dead node
  gets no new ones. ``persistent`` (one websocket for every call) works too:
  it fails over but does not spread.
* Each connection's events feed the link's ``AriRuntime`` exactly as the
  inbound websocket's do, so applications see the same events in the same
  per-channel order. REST calls still go to Asterisk's HTTP server; the
  node's own originations keep their inbound websocket (``node_app``).
* The path names the Asterisk: ``/ari`` (or ``/ari/default``) for the
  default one, ``/ari/<server>`` for a server PBXs are bound to. Asterisk
  authenticates with HTTP Basic (websocket_client.conf's username/password),
  compared in constant time against the credentials of the Asterisk the
  path names, each Asterisk having its own (``outbound_conf.
  outbound_password``): one cannot send events as another. Anything else,
  an unknown path included, gets 401 before the upgrade.
* A node that died mid-call leaves per-call websockets that Asterisk
  reconnects, through the load balancer, to a surviving node: that
  connection carries ``ApplicationRegistered`` and no ``StasisStart`` (the
  call's state died with the node). Such an orphan is hung up after
  ``ORPHAN_SECONDS`` so the caller is not left in silence; the dead node's
  outcome is recorded from the database by the features' watchdogs.
* ``GET /health`` (plain HTTP) answers load balancers: 200 while the node is
  accepting calls and its health check passes, 503 once it is stopping.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import WebSocketException
from websockets.http11 import Request, Response

from kalliope_tel.asterisk.ari.errors import AriError, AriProtocolError
from kalliope_tel.asterisk.ari.models import StasisEnd, StasisStart, decode_event
from kalliope_tel.asterisk.ari.runtime import AriRuntime
from kalliope_tel.config import split_bind

log = structlog.get_logger(__name__)

# A fresh per-call websocket carries StasisStart about 0.5 s after
# ApplicationRegistered (measured on Asterisk 22.10); a reconnected one never.
ORPHAN_SECONDS = 3.0
HealthCheck = Callable[[], Awaitable[bool]]


@dataclass
class _Seen:
    """What one websocket has carried so far."""

    channel_name: str = ""
    persistent: bool = False
    started: set[str] = field(default_factory=set)  # channels whose StasisStart came on it
    ended: set[str] = field(default_factory=set)


def _response(status: HTTPStatus, body: str, **headers: str) -> Response:
    hdrs = Headers({"Content-Type": "text/plain; charset=utf-8", "Connection": "close", **headers})
    return Response(status.value, status.phrase, hdrs, (body + "\n").encode())


class OutboundListener:
    """Accepts Asterisk's ARI websockets and feeds each to its link's runtime."""

    def __init__(
        self,
        bind: str,
        credentials: dict[str, tuple[str, str]],
        runtimes: dict[str, AriRuntime],
        *,
        health: HealthCheck | None = None,
        orphan_seconds: float = ORPHAN_SECONDS,
    ) -> None:
        self.host, self.port = split_bind(bind, "ari_outbound_bind")
        # By label, as the path names them: "user:password" each.
        self._credentials = {label: f"{user}:{password}".encode() for label, (user, password) in credentials.items()}
        self._runtimes = runtimes  # by label: "default" and each server's name
        self._health = health
        self._orphan_seconds = orphan_seconds
        self._server: Server | None = None
        self._stopping = False
        self.ready = asyncio.Event()
        self.sessions = 0  # open websockets now
        self.accepted = 0
        self.refused = 0
        self.orphans_hung_up = 0

    # ------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Serve until cancelled (supervised like the other engines)."""
        async with serve(
            self._session,
            self.host,
            self.port,
            process_request=self._check_request,
            subprotocols=["ari"],  # type: ignore[list-item]
            ping_interval=10,
            ping_timeout=10,
            close_timeout=2,
            max_size=2**22,
        ) as server:
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            log.info("ari.outbound_listening", host=self.host, port=self.port)
            self.ready.set()
            await asyncio.Event().wait()

    def stop_accepting(self) -> None:
        """Refuse new websockets and fail health checks (shutdown): the load
        balancer sends new calls elsewhere while ours finish."""
        self._stopping = True
        if self._server is not None:
            # The listening sockets only: websockets' own close(...) runs once,
            # and the full one (closing the calls' websockets) belongs to the
            # end of run(), after the calls in progress had their grace.
            self._server.server.close()

    # ------------------------------------------------------------ handshake
    async def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/health":
            healthy = not self._stopping and (self._health is None or await self._health())
            if healthy:
                return _response(HTTPStatus.OK, "ok")
            return _response(HTTPStatus.SERVICE_UNAVAILABLE, "stopping" if self._stopping else "unhealthy")
        if self._stopping:
            return _response(HTTPStatus.SERVICE_UNAVAILABLE, "stopping")
        label = self._label(path)
        if label not in self._runtimes or not self._authorised(label, request.headers.get("Authorization", "")):
            # One answer for a wrong password and for a path naming another
            # Asterisk (or none): the caller learns nothing about which.
            self.refused += 1
            log.warning("ari.outbound_refused", reason="credentials", asterisk=label,
                        peer=str(connection.remote_address))  # fmt: skip
            return _response(HTTPStatus.UNAUTHORIZED, "unauthorised", **{"WWW-Authenticate": 'Basic realm="ari"'})
        return None

    def _authorised(self, label: str, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = self._credentials.get(label)
        return expected is not None and hmac.compare_digest(given, expected)

    @staticmethod
    def _label(path: str) -> str:
        rest = path.rstrip("/").removeprefix("/ari").strip("/")
        return rest or "default"

    # ------------------------------------------------------------ sessions
    async def _session(self, ws: ServerConnection) -> None:
        runtime = self._runtimes[self._label(ws.request.path.split("?", 1)[0] if ws.request else "")]
        self.accepted += 1
        self.sessions += 1
        seen = _Seen()
        watchdog = asyncio.create_task(self._expect_a_call(runtime, seen))
        try:
            async for message in ws:
                try:
                    event = decode_event(message)
                except AriProtocolError as exc:
                    log.warning("ari.bad_event", error=str(exc))
                    continue
                if event.type == "ApplicationRegistered":
                    # Per-call: "<app>:<channel name>"; persistent: "<app>".
                    _app, _, channel_name = event.application.partition(":")
                    seen.persistent = seen.persistent or not channel_name
                    seen.channel_name = seen.channel_name or channel_name
                if isinstance(event, StasisStart):
                    seen.started.add(event.channel.id)
                elif isinstance(event, StasisEnd):
                    seen.ended.add(event.channel.id)
                await runtime.feed(event)
        except WebSocketException as exc:
            log.warning("ari.outbound_dropped", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.sessions -= 1
            watchdog.cancel()
            # A websocket that closed before its calls left Stasis (Asterisk
            # restarting, the network) leaves calls this node cannot follow any
            # more: their events go wherever Asterisk reconnects.
            unfinished = {cid for cid in seen.started - seen.ended if runtime.owner(cid) is not None}
            for cid in seen.started & seen.ended:
                runtime.forget(cid)  # its ChannelDestroyed goes to no application
            if unfinished:
                await runtime.lose(unfinished, hang_up=True)

    async def _expect_a_call(self, runtime: AriRuntime, seen: _Seen) -> None:
        """A per-call websocket whose StasisStart does not come is an orphan:
        reconnected after its node died (the call's state died with it), or
        opened late for a call whose handshake waited on a stalled node. Its
        channel, if still there and nobody's, is hung up; Asterisk then ends
        the websocket with the call. (Closing it ourselves makes Asterisk
        reconnect it, again and again, while its Stasis() runs.)"""
        await asyncio.sleep(self._orphan_seconds)
        if seen.started or seen.persistent:
            return
        log.warning("ari.outbound_no_call", channel=seen.channel_name or "-")
        if seen.channel_name:
            await self._hang_up_orphan(runtime, seen.channel_name)

    async def _hang_up_orphan(self, runtime: AriRuntime, channel_name: str) -> None:
        try:
            channels = await runtime.client.list_channels()
        except AriError as exc:
            log.warning("ari.orphan_lookup_failed", channel=channel_name, error=str(exc))
            return
        for channel in channels:
            if channel.name == channel_name and runtime.owner(channel.id) is None:
                log.warning("ari.orphan_hung_up", channel=channel_name, id=channel.id)
                self.orphans_hung_up += 1
                with contextlib.suppress(AriError):
                    await runtime.client.hangup(channel.id, reason="normal")

    def status(self) -> dict[str, int | bool]:
        return {
            "listening": self.ready.is_set() and not self._stopping,
            "port": self.port,
            "sessions": self.sessions,
            "accepted": self.accepted,
            "refused": self.refused,
            "orphans_hung_up": self.orphans_hung_up,
        }
