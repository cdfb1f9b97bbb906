"""FastAGI read deadlines (one watchdog for every request, see ReadWatch).

A peer that never answers a command is a fault a real Asterisk cannot be
made to show, so these talk to the server over a plain socket."""

from __future__ import annotations

import asyncio
import time

import pytest

from kalliope_tel.asterisk.agi.server import WATCH_PERIOD, AgiRequest, AgiRouter, AgiServer

pytestmark = pytest.mark.unit

ENV = b"agi_network: yes\nagi_network_script: ask\nagi_channel: Local/1@x\n\n"


async def _server(command_timeout: float, header_timeout: float = 5.0) -> tuple[AgiServer, list[object]]:
    seen: list[object] = []
    router = AgiRouter()

    async def ask(request: AgiRequest) -> None:
        try:
            seen.append(await request.get_variable("X"))
        except BaseException as exc:
            seen.append(exc)
            raise

    router.add("ask", ask)
    server = AgiServer(router, "127.0.0.1", 0, header_timeout=header_timeout, command_timeout=command_timeout)
    await server.start()
    return server, seen


async def test_a_command_never_answered_fails_the_request_after_its_timeout() -> None:
    server, seen = await _server(command_timeout=0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = time.monotonic()
        writer.write(ENV)
        assert await reader.readline() == b'GET VARIABLE "X"\n'
        # No reply: the request gives up and tells the dialplan why.
        error = await asyncio.wait_for(reader.readline(), 5)
        waited = time.monotonic() - started
        assert error.startswith(b'SET VARIABLE "KALLIOPE_AGI_ERROR" ') and b"no data within 0.5 s" in error
        assert 0.5 <= waited < 0.5 + 2 * WATCH_PERIOD + 0.5
        assert len(seen) == 1 and isinstance(seen[0], TimeoutError)
        writer.close()
        assert server.stats.failed == 1
    finally:
        await server.stop(grace=1)


async def test_a_reply_in_time_is_read_and_a_stop_still_cancels() -> None:
    server, seen = await _server(command_timeout=0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(ENV)
        assert await reader.readline() == b'GET VARIABLE "X"\n'
        await asyncio.sleep(0.3)
        writer.write(b"200 result=1 (value)\n")
        assert await asyncio.wait_for(reader.readline(), 5) == b"SET VARIABLE KALLIOPE_AGI_STATUS SUCCESS\n"
        assert seen == ["value"] and server.stats.failed == 0
        await asyncio.sleep(0.6)  # past the deadline the read had: nothing fires late
        assert server.stats.failed == 0
        writer.close()
        # A request waiting when the server stops is cancelled, not timed out.
        r2, w2 = await asyncio.open_connection("127.0.0.1", server.port)
        w2.write(ENV)
        assert await r2.readline() == b'GET VARIABLE "X"\n'
    finally:
        await server.stop(grace=0.1)
    assert isinstance(seen[-1], asyncio.CancelledError)
    w2.close()


async def test_a_stalled_header_is_dropped_as_a_bad_client() -> None:
    server, _ = await _server(command_timeout=5, header_timeout=0.3)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network: yes\nagi_netw")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert server.stats.bad_clients == 1
        writer.close()
    finally:
        await server.stop(grace=1)


async def test_a_peer_off_the_allow_list_is_refused_before_its_request_is_read() -> None:
    from kalliope_tel.peers import Peers

    router = AgiRouter()
    calls: list[str] = []

    async def ask(request: AgiRequest) -> None:
        calls.append(request.script)

    router.add("ask", ask)
    for allowed, served in ((Peers.parse(["192.0.2.0/24"]), False), (Peers.parse(["127.0.0.1"]), True)):
        server = AgiServer(router, "127.0.0.1", 0, allowed=allowed)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(ENV)
            await writer.drain()
            try:  # closed either way, once done (refused: reset, the request unread)
                await asyncio.wait_for(reader.read(), 5)
            except ConnectionResetError:
                assert not served
            writer.close()
            await asyncio.sleep(0.05)
            assert (server.stats.refused, server.stats.requests) == ((0, 1) if served else (1, 0))
        finally:
            await server.stop(grace=1)
    assert calls == ["ask"]


def test_a_fastagi_listener_beyond_loopback_needs_an_allow_list() -> None:
    from kalliope_tel.config import Settings

    with pytest.raises(ValueError, match="agi_allowed_peers"):
        Settings(agi_bind="0.0.0.0:4573")
    with pytest.raises(ValueError, match="agi_allowed_peers entry 'asterisk-a'"):
        Settings(agi_bind="0.0.0.0:4573", agi_allowed_peers=["asterisk-a"])
    assert Settings(agi_bind="0.0.0.0:4573", agi_allowed_peers=["10.0.0.5", "10.1.0.0/24"]).agi_allowed_peers
    assert Settings(agi_bind="127.0.0.1:4573").agi_allowed_peers == []
