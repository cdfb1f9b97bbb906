"""ARI REST operations and the supervised event websocket.

Credentials travel only in the ``Authorization`` header: never in a URL, so
they cannot leak into access logs or our own structured logs. Every REST call
has a timeout; a 404 raises ``AriGone``; connection failures raise
``AriUnavailable`` so callers can tell "Asterisk is restarting" from "bad
request".

REST over the event websocket: an Asterisk that has it (20.14, 21.9, 22.4
and later) answers requests sent on the websocket as ``RESTResponse``
events. Once it has answered a probe on a connection, requests go that way:
an aiohttp request was a fifth of the wake-up engine's CPU (connection
pool, HTTP headers both ways, a write per part), a websocket message is one
frame each way. Until the probe is answered, on an older Asterisk, and from
inside the websocket's own reader (which alone reads the answers), requests
go over HTTP. Requests waiting when the websocket drops fail with
``AriUnavailable``, as an HTTP request to a restarting Asterisk does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import random
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from kalliope_tel.asterisk.ari.errors import (
    AriAuthError,
    AriError,
    AriGone,
    AriHttpError,
    AriProtocolError,
    AriUnavailable,
)
from kalliope_tel.asterisk.ari.models import (
    AsteriskInfo,
    Bridge,
    Channel,
    Event,
    Playback,
    RESTResponse,
    decode_event,
)

log = structlog.get_logger(__name__)

# Requests made inside ``over_http()`` go over HTTP whatever the connection
# offers: Asterisk runs a websocket's requests one after another on that
# websocket's thread, and the fax application's call set-up measured worse
# that way (see FaxApplication.rest_over_websocket).
_HTTP_ONLY: ContextVar[bool] = ContextVar("kalliope_ari_http_only", default=False)


@contextlib.contextmanager
def over_http() -> Iterator[None]:
    token = _HTTP_ONLY.set(True)
    try:
        yield
    finally:
        _HTTP_ONLY.reset(token)


EventCallback = Callable[[Event], Awaitable[None]]
ConnectCallback = Callable[[], Awaitable[None]]


class AriClient:
    """One ARI account on one Asterisk.

    ``base_url`` is like ``http://127.0.0.1:8088/ari``. ``apps`` are the Stasis
    application names the event websocket subscribes to.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        apps: list[str] | None = None,
        timeout: float = 10.0,
        rest_over_websocket: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.apps = list(apps or [])
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._auth_header = {"Authorization": f"Basic {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # Made at the first request, inside the running loop (aiohttp binds a
        # session to the loop it was made in; clients are built before it).
        self._http: aiohttp.ClientSession | None = None
        self.connected = asyncio.Event()
        self._closing = False
        self._ws: ClientConnection | None = None
        self._timeout_seconds = timeout
        self.rest_over_websocket = rest_over_websocket
        self._ws_rest = False  # this connection's Asterisk answered the probe
        self._reader: asyncio.Task[Any] | None = None
        self._pending: dict[str, asyncio.Future[RESTResponse]] = {}
        self._ids = itertools.count(1)
        self.http_requests = 0
        self.ws_requests = 0

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def websocket_rest(self) -> bool:
        """Requests go over the event websocket now (see the module's doc)."""
        return self._ws_rest and self._ws is not None

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            connector = aiohttp.TCPConnector(
                # Asterisk's HTTP server gives each connection a thread
                # (http.conf sessionlimit, 100 by default, shared with the
                # event websockets); it answers a loopback call in about a
                # millisecond, so 16 carry thousands a second.
                limit=16,
                # Asterisk drops an idle connection after 15 s
                # (session_keep_alive); reusing one at that instant would
                # fail the request, so ours are let go well before.
                keepalive_timeout=5,
            )
            # trust_env stays off: a proxy from the environment never sees
            # ARI credentials.
            self._http = aiohttp.ClientSession(connector=connector, headers=self._auth_header, timeout=self._timeout)
        return self._http

    # ------------------------------------------------------------ REST core
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """Perform one REST call; return the decoded JSON body (or None)."""
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        ws = self._ws
        content: bytes | str
        if self._ws_rest and ws is not None and not _HTTP_ONLY.get() and asyncio.current_task() is not self._reader:
            status, content, reason = await self._over_websocket(ws, method, path, clean, body)
        else:
            status, content, reason = await self._over_http(method, path, clean, body)
        if status >= 400:
            message = _error_message(content, reason)
            cls: type[AriHttpError] = AriHttpError
            if status == 404:
                cls = AriGone
            elif status == 401:
                cls = AriAuthError
            raise cls(method, path, status, message)
        if not content:
            return None
        try:
            return json.loads(content)
        except ValueError as exc:
            raise AriProtocolError(f"ARI {method} {path}: body is not JSON") from exc

    async def _over_http(
        self, method: str, path: str, params: dict[str, Any], body: dict[str, Any] | None
    ) -> tuple[int, bytes, str]:
        self.http_requests += 1
        try:
            async with self._session().request(method, self.base_url + path, params=params, json=body) as resp:
                return resp.status, await resp.read(), resp.reason or ""
        except TimeoutError as exc:
            raise AriUnavailable(f"ARI {method} {path}: timed out") from exc
        except aiohttp.ClientError as exc:
            raise AriUnavailable(f"ARI {method} {path}: {type(exc).__name__}: {exc}") from exc

    def _send_request(
        self, ws: ClientConnection, method: str, path: str, params: dict[str, Any], body: dict[str, Any] | None
    ) -> tuple[str, asyncio.Future[RESTResponse], Awaitable[None]]:
        rid = str(next(self._ids))
        uri = path.lstrip("/") + ("?" + urlencode(params) if params else "")
        message: dict[str, str] = {
            "type": "RESTRequest",
            "transaction_id": rid,
            "request_id": rid,
            "method": method,
            "uri": uri,
        }
        if body is not None:
            message["content_type"] = "application/json"
            message["message_body"] = json.dumps(body)
        future: asyncio.Future[RESTResponse] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        return rid, future, ws.send(json.dumps(message))

    async def _over_websocket(
        self, ws: ClientConnection, method: str, path: str, params: dict[str, Any], body: dict[str, Any] | None
    ) -> tuple[int, str, str]:
        self.ws_requests += 1
        rid, future, sending = self._send_request(ws, method, path, params, body)
        try:
            async with asyncio.timeout(self._timeout_seconds):
                await sending
                answer = await future
        except TimeoutError as exc:
            raise AriUnavailable(f"ARI {method} {path}: timed out") from exc
        except (WebSocketException, OSError) as exc:
            raise AriUnavailable(f"ARI {method} {path}: {type(exc).__name__}: {exc}") from exc
        finally:
            self._pending.pop(rid, None)
        return answer.status_code, answer.message_body, answer.reason_phrase

    def _answered(self, response: RESTResponse) -> None:
        future = self._pending.pop(response.request_id, None)
        if future is not None and not future.done():
            future.set_result(response)

    async def _probe_websocket_rest(self, ws: ClientConnection) -> None:
        """Ask this connection's Asterisk one request over the websocket; its
        answer (read by the reader like any event) switches requests over."""
        if not self.rest_over_websocket:
            return
        _rid, future, sending = self._send_request(ws, "GET", "/asterisk/ping", {}, None)

        def answered(done: asyncio.Future[RESTResponse]) -> None:
            if self._ws is ws and not done.cancelled() and done.exception() is None and done.result().status_code < 400:
                self._ws_rest = True
                log.info("ari.rest_over_websocket")

        future.add_done_callback(answered)
        with contextlib.suppress(WebSocketException, OSError):  # the connection is going: the reader sees it
            await sending

    def _lose_pending(self) -> None:
        self._ws_rest = False
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(AriUnavailable("ARI websocket closed before the answer came"))
                future.exception()  # the probe's future has no awaiter: no 'never retrieved' warning

    # ------------------------------------------------------------ asterisk
    async def ping(self) -> bool:
        await self.request("GET", "/asterisk/ping")
        return True

    async def info(self) -> AsteriskInfo:
        return AsteriskInfo.model_validate(await self.request("GET", "/asterisk/info"))

    # ------------------------------------------------------------ channels
    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: list[str] | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: dict[str, str] | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: str | None = None,
    ) -> Channel:
        """``POST /channels``: returns at once with the channel in state Down.

        The outcome arrives as events: StasisStart on answer; with no answer,
        busy or congestion only Dial and ChannelDestroyed (with the cause).
        """
        params = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": ",".join(app_args) if app_args else None,
            "context": context,
            "extension": extension,
            "priority": priority,
            "callerId": caller_id,
            "timeout": timeout,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
            "formats": formats,
        }
        body = {"variables": variables} if variables else None
        return Channel.model_validate(await self.request("POST", "/channels", params=params, body=body))

    async def create_channel(
        self,
        endpoint: str,
        app: str,
        *,
        app_args: list[str] | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        """``POST /channels/create``: a channel that is dialled later with ``dial``."""
        params = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": ",".join(app_args) if app_args else None,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
            "formats": formats,
        }
        body = {"variables": variables} if variables else None
        data = await self.request("POST", "/channels/create", params=params, body=body)
        return Channel.model_validate(data)

    async def external_media(
        self,
        app: str,
        external_host: str,
        *,
        audio_format: str = "ulaw",
        channel_id: str | None = None,
        encapsulation: str = "rtp",
        transport: str = "udp",
        direction: str = "both",
        variables: dict[str, str] | None = None,
    ) -> Channel:
        """``POST /channels/externalMedia``: RTP to and from ``external_host``.

        The reply's ``channelvars`` hold ``UNICASTRTP_LOCAL_ADDRESS`` and
        ``UNICASTRTP_LOCAL_PORT``: where Asterisk sends from and listens.
        """
        params = {
            "app": app,
            "external_host": external_host,
            "format": audio_format,
            "channelId": channel_id,
            "encapsulation": encapsulation,
            "transport": transport,
            "direction": direction,
        }
        body = {"variables": variables} if variables else None
        data = await self.request("POST", "/channels/externalMedia", params=params, body=body)
        return Channel.model_validate(data)

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.model_validate(await self.request("GET", f"/channels/{channel_id}"))

    async def list_channels(self) -> list[Channel]:
        return [Channel.model_validate(c) for c in await self.request("GET", "/channels")]

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/ring")

    async def dial(self, channel_id: str, *, caller: str | None = None, timeout: int | None = None) -> None:
        await self.request("POST", f"/channels/{channel_id}/dial", params={"caller": caller, "timeout": timeout})

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        params = {"context": context, "extension": extension, "priority": priority, "label": label}
        await self.request("POST", f"/channels/{channel_id}/continue", params=params)

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/redirect", params={"endpoint": endpoint})

    async def play(
        self,
        channel_id: str,
        media: str | list[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> Playback:
        media_param = ",".join(media) if isinstance(media, list) else media
        params = {"media": media_param, "playbackId": playback_id, "lang": lang}
        return Playback.model_validate(await self.request("POST", f"/channels/{channel_id}/play", params=params))

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        audio_format: str = "wav",
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str = "fail",
        beep: bool = False,
        terminate_on: str = "none",
    ) -> dict[str, Any]:
        params = {
            "name": name,
            "format": audio_format,
            "maxDurationSeconds": max_duration_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
        }
        result: dict[str, Any] = await self.request("POST", f"/channels/{channel_id}/record", params=params)
        return result

    async def send_dtmf(
        self,
        channel_id: str,
        dtmf: str,
        *,
        between_ms: int | None = None,
        duration_ms: int | None = None,
    ) -> None:
        params = {"dtmf": dtmf, "between": between_ms, "duration": duration_ms}
        await self.request("POST", f"/channels/{channel_id}/dtmf", params=params)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/channels/{channel_id}/moh", params={"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def snoop(
        self,
        channel_id: str,
        app: str,
        *,
        spy: str = "none",
        whisper: str = "none",
        app_args: list[str] | None = None,
        snoop_id: str | None = None,
    ) -> Channel:
        params = {
            "app": app,
            "spy": spy,
            "whisper": whisper,
            "appArgs": ",".join(app_args) if app_args else None,
            "snoopId": snoop_id,
        }
        return Channel.model_validate(await self.request("POST", f"/channels/{channel_id}/snoop", params=params))

    async def get_variable(self, channel_id: str, name: str) -> str:
        data = await self.request("GET", f"/channels/{channel_id}/variable", params={"variable": name})
        return str(data.get("value", ""))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        params = {"variable": name, "value": value}
        await self.request("POST", f"/channels/{channel_id}/variable", params=params)

    # ------------------------------------------------------------ bridges
    async def create_bridge(
        self, bridge_type: str = "mixing", *, bridge_id: str | None = None, name: str | None = None
    ) -> Bridge:
        params = {"type": bridge_type, "bridgeId": bridge_id, "name": name}
        return Bridge.model_validate(await self.request("POST", "/bridges", params=params))

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return Bridge.model_validate(await self.request("GET", f"/bridges/{bridge_id}"))

    async def delete_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        params = {"channel": ",".join(channel_ids)}
        await self.request("POST", f"/bridges/{bridge_id}/addChannel", params=params)

    async def remove_from_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        params = {"channel": ",".join(channel_ids)}
        await self.request("POST", f"/bridges/{bridge_id}/removeChannel", params=params)

    async def bridge_play(self, bridge_id: str, media: str, *, playback_id: str | None = None) -> Playback:
        params = {"media": media, "playbackId": playback_id}
        return Playback.model_validate(await self.request("POST", f"/bridges/{bridge_id}/play", params=params))

    # ------------------------------------------------------------ playbacks
    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def control_playback(self, playback_id: str, operation: str) -> None:
        await self.request("POST", f"/playbacks/{playback_id}/control", params={"operation": operation})

    # ------------------------------------------------------------ applications
    async def filter_events(self, app: str, allowed: list[str]) -> None:
        """``PUT /applications/{app}/eventFilter``: Asterisk sends ``app``
        only events of these types (and stops sending the rest at the
        source)."""
        body = {"allowed": [{"type": t} for t in allowed], "disallowed": []}
        await self.request("PUT", f"/applications/{app}/eventFilter", body=body)

    # ------------------------------------------------------------ events
    def events_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = f"app={','.join(self.apps)}&subscribeAll=false"
        return urlunsplit((scheme, parts.netloc, parts.path + "/events", query, ""))

    async def run_events(
        self,
        on_event: EventCallback,
        *,
        on_connected: ConnectCallback | None = None,
        on_disconnected: ConnectCallback | None = None,
        max_backoff: float = 8.0,
    ) -> None:
        """Hold the event websocket open until ``aclose``; reconnect with backoff.

        ``on_connected`` runs after every (re)connection, before any event of
        that connection is delivered, so an application can reconcile what it
        tracked with what Asterisk still has. A wrong password raises
        ``AriAuthError`` at once instead of retrying forever.
        """
        if not self.apps:
            raise AriError("no Stasis application names to subscribe to")
        backoff = 0.25
        url = self.events_url()
        self._reader = asyncio.current_task()
        while not self._closing:
            try:
                async with connect(
                    url,
                    additional_headers=self._auth_header,
                    open_timeout=10,
                    ping_interval=10,
                    ping_timeout=10,
                    close_timeout=2,
                    max_size=2**22,
                ) as ws:
                    self._ws = ws
                    backoff = 0.25
                    log.info("ari.connected", url=url)
                    self.connected.set()
                    await self._probe_websocket_rest(ws)
                    if on_connected is not None:
                        await on_connected()
                    async for message in ws:
                        try:
                            event = decode_event(message)
                        except AriProtocolError as exc:
                            log.warning("ari.bad_event", error=str(exc))
                            continue
                        if isinstance(event, RESTResponse):
                            self._answered(event)
                            continue
                        await on_event(event)
            except InvalidStatus as exc:
                if exc.response.status_code == 401:
                    raise AriAuthError("GET", "/events", 401, "wrong ARI username or password") from None
                log.warning("ari.ws_refused", status=exc.response.status_code)
            except (OSError, WebSocketException, TimeoutError) as exc:
                if not self._closing:
                    log.warning("ari.disconnected", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._ws = None
                self._lose_pending()
                if self.connected.is_set():
                    self.connected.clear()
                    if on_disconnected is not None and not self._closing:
                        await on_disconnected()
            if self._closing:
                break
            # Jitter keeps many nodes from hammering a restarting Asterisk in step.
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))  # noqa: S311
            backoff = min(backoff * 2, max_backoff)


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _error_message(content: bytes | str, reason: str) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        return text.strip()[:200] or reason
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)
    return str(data)
