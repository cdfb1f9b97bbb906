"""Supervised AMI connection: login that really completes, actions with
timeouts, events by name, keepalive with a timeout, reconnect and re-login.

Every ``Originate`` is sent with ``Async: true``: a synchronous one blocks the
whole manager session (events held back) and, in panoramisk, never returned.
Its outcome is the ``OriginateResponse`` event carrying the same ActionID.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog

from kalliope_tel.asterisk.ami.protocol import (
    AmiActionError,
    AmiAuthError,
    AmiError,
    AmiMessage,
    AmiParser,
    AmiProtocolError,
    encode_action,
)

log = structlog.get_logger(__name__)

EventHandler = Callable[[AmiMessage], Awaitable[None]]
Fields = dict[str, str] | Iterable[tuple[str, str]]


class AmiUnavailable(AmiError):
    """The manager port cannot be reached, or the connection dropped."""


@dataclass
class _Pending:
    future: asyncio.Future[list[AmiMessage]]
    collected: list[AmiMessage] = field(default_factory=list)
    is_list: bool = False


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        action_timeout: float = 10.0,
        ping_interval: float = 15.0,
        ping_timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self.action_timeout = action_timeout
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.connect_timeout = connect_timeout
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._long_commands = 0  # long CLI commands in progress (reloads)
        self._originates: dict[str, asyncio.Future[AmiMessage]] = {}
        self._handlers: dict[str, list[EventHandler]] = {}
        self._events: asyncio.Queue[AmiMessage] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.banner = ""

    # ------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        """Connect and log in; raise ``AmiAuthError`` or ``AmiUnavailable`` at once.

        After this first success the connection is supervised: it reconnects
        and logs in again by itself whenever it drops.
        """
        reader = await self._open()
        self._tasks = [
            asyncio.create_task(self._supervise(reader), name="ami-supervisor"),
            asyncio.create_task(self._deliver_events(), name="ami-events"),
            asyncio.create_task(self._keepalive(), name="ami-keepalive"),
        ]

    async def _open(self) -> asyncio.StreamReader:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise AmiUnavailable(f"AMI {self.host}:{self.port} unreachable: {exc or 'timeout'}") from None
        parser = AmiParser()
        try:
            # Login is done by hand, before the reader task exists, so that
            # connect() returns only once Asterisk has accepted it.
            await asyncio.wait_for(self._read_banner(reader, parser), self.connect_timeout)
            action_id = f"login-{next(self._ids)}"
            writer.write(
                encode_action(
                    "Login",
                    [
                        ("ActionID", action_id),
                        ("Username", self._username),
                        ("Secret", self._secret),
                        ("Events", "on"),
                    ],
                )
            )
            await writer.drain()
            reply = await asyncio.wait_for(self._read_reply(reader, parser, action_id), self.connect_timeout)
        except (OSError, TimeoutError, AmiProtocolError) as exc:
            writer.close()
            raise AmiUnavailable(f"AMI {self.host}:{self.port}: login did not complete: {exc}") from None
        if reply.get("Response") != "Success":
            writer.close()
            raise AmiAuthError(f"AMI login refused for user {self._username!r}: {reply.get('Message')}")
        self._writer = writer
        self._parser = parser
        self.connected.set()
        log.info("ami.connected", host=self.host, port=self.port)
        return reader

    async def _read_banner(self, reader: asyncio.StreamReader, parser: AmiParser) -> None:
        while parser.banner is None:
            data = await reader.read(4096)
            if not data:
                raise AmiProtocolError("connection closed before the banner")
            for message in parser.feed(data):
                self._events.put_nowait(message)
        self.banner = parser.banner

    async def _read_reply(self, reader: asyncio.StreamReader, parser: AmiParser, action_id: str) -> AmiMessage:
        while True:
            data = await reader.read(65536)
            if not data:
                raise AmiProtocolError("connection closed during login")
            for message in parser.feed(data):
                if message.is_response and message.get("ActionID") == action_id:
                    return message

    async def _supervise(self, reader: asyncio.StreamReader) -> None:
        backoff = 0.25
        while not self._closing:
            try:
                await self._read_loop(reader)
            except (OSError, AmiProtocolError) as exc:
                log.warning("ami.read_failed", error=str(exc))
            self._drop_connection("connection to Asterisk lost")
            while not self._closing:
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))  # noqa: S311
                try:
                    reader = await self._open()
                except AmiAuthError:
                    log.error("ami.login_refused_after_reconnect")
                    backoff = min(backoff * 2, 30.0)
                except AmiUnavailable as exc:
                    log.debug("ami.reconnect_failed", error=str(exc))
                    backoff = min(backoff * 2, 8.0)
                else:
                    self.reconnects += 1
                    backoff = 0.25
                    break

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            for message in self._parser.feed(data):
                self._route(message)

    def _drop_connection(self, reason: str) -> None:
        self.connected.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(AmiUnavailable(reason))
        self._pending.clear()
        for fut in self._originates.values():
            if not fut.done():
                fut.set_exception(AmiUnavailable(reason))
        self._originates.clear()

    async def aclose(self) -> None:
        self._closing = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.write(encode_action("Logoff", []))
        self._drop_connection("client closed")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ routing
    def _route(self, message: AmiMessage) -> None:
        action_id = message.get("ActionID")
        pending = self._pending.get(action_id) if action_id else None
        if pending is not None:
            if message.is_response:
                if message.get("EventList").lower() == "start":
                    pending.is_list = True
                    pending.collected.append(message)
                    return
                self._finish(action_id, [message])
                return
            if pending.is_list and message.is_event:
                if message.get("EventList").lower() == "complete":
                    self._finish(action_id, [*pending.collected, message])
                else:
                    pending.collected.append(message)
                return
        if message.get("Event") == "OriginateResponse" and action_id in self._originates:
            fut = self._originates.pop(action_id)
            if not fut.done():
                fut.set_result(message)
        if message.is_event:
            self._events.put_nowait(message)

    def _finish(self, action_id: str, messages: list[AmiMessage]) -> None:
        pending = self._pending.pop(action_id)
        if not pending.future.done():
            pending.future.set_result(messages)

    async def _deliver_events(self) -> None:
        # One worker keeps event order and never blocks the socket reader.
        while True:
            message = await self._events.get()
            for name in (message.get("Event"), "*"):
                for handler in self._handlers.get(name, ()):
                    try:
                        await handler(message)
                    except Exception:
                        log.exception("ami.handler_failed", event=message.get("Event"))

    def on(self, event: str, handler: EventHandler) -> None:
        """Call ``handler`` for every event named ``event`` ("*" for all)."""
        self._handlers.setdefault(event, []).append(handler)

    # ------------------------------------------------------------ keepalive
    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            if not self.connected.is_set() or self._long_commands:
                # Asterisk answers one session's actions in turn: a Ping behind
                # a long command (a reload of 50,000 endpoints) would time out
                # and drop a connection that is fine.
                continue
            try:
                await self.action("Ping", timeout=self.ping_timeout)
            except (AmiError, TimeoutError):
                log.warning("ami.keepalive_failed")
                # Closing the socket wakes the reader, which reconnects.
                if self._writer is not None:
                    self._writer.close()

    # ------------------------------------------------------------ actions
    async def _send(
        self, action: str, fields: Fields, timeout: float | None, action_id: str | None = None
    ) -> list[AmiMessage]:
        if self._writer is None or not self.connected.is_set():
            raise AmiUnavailable("not connected to AMI")
        action_id = action_id or f"kt-{next(self._ids)}"
        items = list(fields.items()) if isinstance(fields, dict) else list(fields)
        future: asyncio.Future[list[AmiMessage]] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(future)
        try:
            self._writer.write(encode_action(action, [("ActionID", action_id), *items]))
            await self._writer.drain()
            return await asyncio.wait_for(future, timeout or self.action_timeout)
        except TimeoutError:
            raise AmiError(f"AMI {action}: no answer within {timeout or self.action_timeout:.0f} s") from None
        except OSError as exc:
            raise AmiUnavailable(f"AMI {action}: {exc}") from None
        finally:
            self._pending.pop(action_id, None)

    async def action(
        self, action: str, fields: Fields = (), *, timeout: float | None = None, check: bool = True
    ) -> AmiMessage:
        """Send one action and return its response; ``Response: Error`` raises if ``check``."""
        reply = (await self._send(action, fields, timeout))[0]
        if check and reply.get("Response") == "Error":
            raise AmiActionError(action, reply.get("Message"))
        return reply

    async def action_list(self, action: str, fields: Fields = (), *, timeout: float | None = None) -> list[AmiMessage]:
        """An action answered by an event list: the response, events, and the Complete event."""
        messages = await self._send(action, fields, timeout)
        if messages[0].get("Response") == "Error":
            raise AmiActionError(action, messages[0].get("Message"))
        return messages

    async def command(self, cli: str, *, timeout: float | None = None) -> str:
        """Run a CLI command; return its output text. A ``timeout`` longer
        than the usual one marks a long command (the keepalive waits)."""
        long = timeout is not None and timeout > self.action_timeout
        self._long_commands += long
        try:
            reply = await self.action("Command", {"Command": cli}, timeout=timeout)
        finally:
            self._long_commands -= long
        return "\n".join(reply.get_all("Output"))

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int = 1,
        application: str | None = None,
        data: str | None = None,
        timeout_ms: int = 30000,
        caller_id: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> AmiMessage:
        """Originate asynchronously and wait for ``OriginateResponse``.

        The returned event has ``Response`` Success or Failure and ``Reason``:
        4 answered, 3 no answer, 5 busy, 8 congestion, 0 no channel.
        """
        fields: list[tuple[str, str]] = [
            ("Channel", channel),
            ("Async", "true"),
            ("Timeout", str(timeout_ms)),
        ]
        if application:
            fields += [("Application", application), ("Data", data or "")]
        else:
            fields += [
                ("Context", context or "default"),
                ("Exten", exten or "s"),
                ("Priority", str(priority)),
            ]
        if caller_id:
            fields.append(("CallerID", caller_id))
        for key, value in (variables or {}).items():
            fields.append(("Variable", f"{key}={value}"))
        action_id = f"kt-{next(self._ids)}"
        fut: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._originates[action_id] = fut
        try:
            reply = (await self._send("Originate", fields, None, action_id))[0]
            if reply.get("Response") == "Error":
                raise AmiActionError("Originate", reply.get("Message"))
            return await asyncio.wait_for(fut, timeout_ms / 1000 + self.action_timeout)
        except TimeoutError:
            raise AmiError("AMI Originate: no OriginateResponse") from None
        finally:
            self._originates.pop(action_id, None)
