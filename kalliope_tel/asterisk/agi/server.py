"""FastAGI server: one asyncio task per call, handlers registered by name.

Theory of operation: Asterisk connects, sends the ``agi_*`` block, and waits
for commands. We read that block line by line under one deadline (a client
that sends half a block and stalls or drops costs one idle task until the
deadline, never a busy loop and never another request's time), route on the
script path (``agi://host:port/NAME?k=v``), and run the handler with an
``AgiRequest`` whose ``send_command`` writes a command and reads its reply.

Whatever happens, the dialplan learns the outcome in ``KALLIOPE_AGI_STATUS``
(``SUCCESS`` or ``FAILED``, with ``KALLIOPE_AGI_ERROR`` saying why), so the
next priority can branch: an unknown script, a handler exception and a 5xx
reply all end as ``FAILED``. A hang-up ends the request quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from kalliope_tel.asterisk.agi.protocol import (
    HANGUP_LINE,
    MAX_ENV_LINES,
    MAX_LINE_BYTES,
    AgiCommandError,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiResult,
    parse_args,
    parse_env_line,
    parse_result_line,
    parse_script,
    quote_arg,
)
from kalliope_tel.dialplan_variables import (
    AGI_ERROR,
    AGI_STATUS,
    AGI_STATUS_FAILED,
    AGI_STATUS_SUCCESS,
    PROMPT,
)
from kalliope_tel.peers import Peers

log = structlog.get_logger(__name__)

Handler = Callable[["AgiRequest"], Awaitable[None]]


class AgiRouter:
    """Handlers by script name: ``@router.route("echo")``."""

    def __init__(self) -> None:
        self._routes: dict[str, Handler] = {}

    def add(self, name: str, handler: Handler) -> None:
        if name in self._routes:
            raise ValueError(f"AGI script {name!r} is registered already")
        self._routes[name] = handler

    def route(self, name: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.add(name, handler)
            return handler

        return decorate

    def get(self, name: str) -> Handler | None:
        return self._routes.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._routes)


# How often the server looks for reads past their deadline: a timeout fires
# up to this much late (the timeouts are seconds long).
WATCH_PERIOD = 0.25


class ReadWatch:
    """One request's read deadline, checked by the server's watchdog.

    ``asyncio.timeout`` around every read cost a Timeout object, a timer in
    the loop's heap and its cancellation, twice per request: about 9 us of
    a pbx-name request's 300-400 us. A read here stores a float; the one
    watchdog task cancels a request whose read is past its deadline, and the
    read turns that cancel into ``TimeoutError`` as ``asyncio.timeout`` does.
    """

    __slots__ = ("deadline", "fired", "task")

    def __init__(self, task: asyncio.Task[None] | None) -> None:
        self.task = task
        self.deadline = float("inf")
        self.fired = False

    async def read(self, read: Awaitable[bytes], timeout: float) -> bytes:
        self.deadline = time.monotonic() + timeout
        try:
            return await read
        except asyncio.CancelledError:
            if self.fired and self.task is not None and self.task.uncancel() == 0:
                self.fired = False
                raise TimeoutError(f"no data within {timeout:g} s") from None
            raise
        finally:
            self.deadline = float("inf")

    def expire(self, now: float) -> None:
        if self.deadline <= now and not self.fired and self.task is not None:
            self.fired = True
            self.task.cancel()


@dataclass
class AgiRequest:
    """One call's FastAGI session, handed to a handler."""

    env: dict[str, str]
    script: str
    params: dict[str, str]
    args: list[str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    command_timeout: float
    watch: ReadWatch = field(default_factory=lambda: ReadWatch(None))
    hung_up: bool = False
    state: dict[str, object] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def caller_id(self) -> str:
        return self.env.get("agi_callerid", "")

    @property
    def extension(self) -> str:
        return self.env.get("agi_extension", "")

    @property
    def unique_id(self) -> str:
        return self.env.get("agi_uniqueid", "")

    async def send_command(self, command: str, *, timeout: float | None = None) -> AgiResult:
        """Send one raw command and parse its reply.

        Raises ``AgiHangup`` when Asterisk reports the hang-up, and
        ``AgiCommandError`` for 5xx replies.
        """
        if "\n" in command or "\r" in command:
            raise ValueError("AGI command contains a line break")
        self.writer.write(command.encode() + b"\n")
        await self.writer.drain()
        limit = timeout or self.command_timeout
        line = await self._read_line(limit)
        if line == HANGUP_LINE:
            self.hung_up = True
            # The reply to our command still follows the pushed HANGUP line;
            # consume it so the stream stays in step, then end the request.
            with contextlib.suppress(AgiError, TimeoutError):
                await self._read_reply(await self._read_line(2.0), 2.0)
            raise AgiHangup("channel hung up")
        return await self._read_reply(line, limit)

    def send_last_command(self, command: str) -> None:
        """Queue a final command whose reply nobody will read (the socket closes next)."""
        if "\n" in command or "\r" in command:
            raise ValueError("AGI command contains a line break")
        self.writer.write(command.encode() + b"\n")

    async def _read_reply(self, line: str, limit: float) -> AgiResult:
        if line.startswith("520-"):
            usage = [line[4:]]
            while not (line := await self._read_line(limit)).startswith("520 "):
                usage.append(line)
            raise AgiCommandError(520, " ".join(usage).strip())
        try:
            return parse_result_line(line)
        except AgiCommandError as exc:
            if exc.code == 511:
                self.hung_up = True
                raise AgiHangup(exc.message) from None
            raise

    async def _read_line(self, timeout: float) -> str:
        try:
            # Not wait_for (on 3.11 it wraps every read in a new Task, which
            # tripled the server's CPU per request), nor asyncio.timeout: see ReadWatch.
            raw = await self.watch.read(self.reader.readline(), timeout)
        except ValueError:  # line longer than the stream limit
            raise AgiProtocolError("reply line too long") from None
        if not raw:
            self.hung_up = True
            raise AgiHangup("connection closed by Asterisk")
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    # ------------------------------------------------------------ helpers
    async def answer(self) -> None:
        await self.send_command("ANSWER")

    async def get_variable(self, name: str) -> str | None:
        result = await self.send_command(f"GET VARIABLE {quote_arg(name)}")
        return result.data if result.value == 1 else None

    async def get_full_variable(self, expression: str) -> str | None:
        result = await self.send_command(f"GET FULL VARIABLE {quote_arg(expression)}")
        return result.data if result.value == 1 else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.send_command(f"SET VARIABLE {quote_arg(name)} {quote_arg(value)}")

    async def stream_file(self, name: str, escape_digits: str = "") -> AgiResult:
        """Play a sound; ``result`` is the digit pressed (ASCII) or 0; -1 if missing."""
        return await self.send_command(f"STREAM FILE {quote_arg(name)} {quote_arg(escape_digits)}")

    async def play(self, name: str, escape_digits: str = "") -> AgiResult:
        """``stream_file``, first naming the prompt in ``KALLIOPE_PROMPT``.

        The variable makes prompts played over AGI visible to ARI/AMI
        observers (``lab dial``, tests, call logs) like Playback() is.
        """
        await self.set_variable(PROMPT, name)
        return await self.stream_file(name, escape_digits)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        result = await self.send_command(f"WAIT FOR DIGIT {timeout_ms}", timeout=timeout_ms / 1000 + 5)
        return chr(result.value) if result.value > 0 else None

    async def get_data(self, prompt: str, timeout_ms: int = 5000, max_digits: int = 1) -> str:
        result = await self.send_command(
            f"GET DATA {quote_arg(prompt)} {timeout_ms} {max_digits}",
            timeout=timeout_ms / 1000 + 30,
        )
        return result.result if result.value >= 0 else ""

    async def exec(self, application: str, options: str = "") -> AgiResult:
        return await self.send_command(f"EXEC {quote_arg(application)} {quote_arg(options)}")

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.send_command(f"VERBOSE {quote_arg(message)} {level}")

    async def hangup(self) -> None:
        await self.send_command("HANGUP")


@dataclass
class AgiStats:
    requests: int = 0
    failed: int = 0
    hangups: int = 0
    bad_clients: int = 0
    refused: int = 0  # peers not on agi_allowed_peers
    active: int = 0


class AgiServer:
    def __init__(
        self,
        router: AgiRouter,
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        header_timeout: float = 5.0,
        command_timeout: float = 30.0,
        allowed: Peers | None = None,
    ) -> None:
        self.router = router
        self.allowed = allowed  # None: every peer (a loopback listener)
        self.host, self.port = host, port
        self.header_timeout = header_timeout
        self.command_timeout = command_timeout
        self.stats = AgiStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._watches: set[ReadWatch] = set()
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port, limit=MAX_LINE_BYTES, reuse_address=True
        )
        sock = self._server.sockets[0].getsockname()
        self.port = int(sock[1])
        self._watchdog = asyncio.create_task(self._watch_deadlines(), name="agi-deadlines")
        log.info("agi.listening", host=self.host, port=self.port, scripts=self.router.names)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting; give requests in progress ``grace`` seconds to finish."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None

    async def _watch_deadlines(self) -> None:
        while True:
            await asyncio.sleep(WATCH_PERIOD)
            now = time.monotonic()
            for watch in self._watches:
                watch.expire(now)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.allowed is not None:
            peer = writer.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            if not self.allowed.allows(address):
                self.stats.refused += 1
                log.warning("agi.peer_refused", peer=address)
                writer.close()  # before a byte of the request is read
                return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        watch = ReadWatch(task)
        self._watches.add(watch)
        self.stats.active += 1
        try:
            await self._serve(reader, writer, watch)
        finally:
            self._watches.discard(watch)
            self.stats.active -= 1
            # Not awaiting wait_closed: the transport sends what is buffered
            # and closes on its own; waiting for it cost a future per request.
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, watch: ReadWatch) -> None:
        try:
            env = await read_environment(reader, watch, self.header_timeout)
        except (TimeoutError, AgiProtocolError, ConnectionError, ValueError) as exc:
            self.stats.bad_clients += 1
            log.warning("agi.bad_client", error=f"{type(exc).__name__}: {exc}")
            return
        script, params = parse_script(env)
        request = AgiRequest(env, script, params, parse_args(env), reader, writer, self.command_timeout, watch)
        self.stats.requests += 1
        handler = self.router.get(script)
        try:
            if handler is None:
                raise LookupError(f"unknown AGI script {script!r}")
            await handler(request)
            # The last command needs no reply: Asterisk runs every command it
            # has read before it sees the close, and this saves a round trip
            # on every call (a third of the server's work for small handlers).
            request.send_last_command(f"SET VARIABLE {AGI_STATUS} {AGI_STATUS_SUCCESS}")
        except AgiHangup:
            self.stats.hangups += 1
            log.info("agi.hangup", script=script, uniqueid=request.unique_id)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            self.stats.failed += 1
            log.warning(
                "agi.failed",
                script=script,
                channel=request.channel,
                uniqueid=request.unique_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            await _report_failure(request, exc)


async def _report_failure(request: AgiRequest, exc: Exception) -> None:
    if request.hung_up:
        return
    reason = str(exc).replace("\n", " ")[:200] or type(exc).__name__
    with contextlib.suppress(AgiError, OSError, TimeoutError):
        await request.set_variable(AGI_ERROR, reason)
        await request.set_variable(AGI_STATUS, AGI_STATUS_FAILED)


async def read_environment(
    reader: asyncio.StreamReader, watch: ReadWatch | None = None, timeout: float = 5.0
) -> dict[str, str]:
    """Read the ``agi_*`` block up to its empty line.

    One read for the whole block: Asterisk sends it at once, every line
    ending in LF. Read line by line (15 reads and a decode per line) it was
    a fifth of the server's CPU per request in ``bench agi``. The block must
    fit the stream's limit (``MAX_LINE_BYTES``; Asterisk's is well under 1 KB).
    """
    try:
        block = await (watch or ReadWatch(None)).read(reader.readuntil(b"\n\n"), timeout)
    except asyncio.IncompleteReadError as exc:
        where = "inside" if exc.partial else "before"
        raise AgiProtocolError(f"connection closed {where} the agi_* block") from None
    except asyncio.LimitOverrunError:
        raise AgiProtocolError(f"agi_* block longer than {MAX_LINE_BYTES} bytes") from None
    lines = block.decode("utf-8", "replace").split("\n")[:-2]
    if len(lines) > MAX_ENV_LINES:
        raise AgiProtocolError(f"agi_* block longer than {MAX_ENV_LINES} lines")
    env: dict[str, str] = {}
    for line in lines:
        key, value = parse_env_line(line.rstrip("\r"))
        env[key] = value
    return env
