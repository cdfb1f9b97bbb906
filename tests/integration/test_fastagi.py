"""FastAGI server driven by the real dialplan of the lab Asterisk."""

from __future__ import annotations

import asyncio
import socket

import pytest

from kalliope_tel.asterisk.agi.server import AgiRequest, AgiRouter, AgiServer
from kalliope_tel.lab.instance import LabState
from tests.helpers import ari_runtime, run_local_call

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]


@pytest.fixture
async def agi_server(lab_state: LabState) -> AgiServer:
    from kalliope_tel.config import Settings
    from kalliope_tel.container import Container

    router = Container(Settings()).agi_router()  # the same handlers serve registers
    server = AgiServer(router, "127.0.0.1", lab_state.agi_port, header_timeout=2.0)
    await server.start()
    yield server
    await server.stop(grace=1)


async def test_dialplan_reaches_echo_handler(lab_state: LabState, agi_server: AgiServer) -> None:
    async with ari_runtime(lab_state) as runtime:
        trace = await run_local_call(runtime, "echo", "kt-lab-agi")
    variables = trace.variables()
    assert variables["KT_ECHO_OUT"] == "x=1;in=hello;args=first|second"
    assert variables["KALLIOPE_AGI_STATUS"] == "SUCCESS"
    assert variables["KALLIOPE_PROMPT"] == "beep"  # the handler streamed the file
    assert variables["KT_RESULT"] == "passed"  # the dialplan checked what we set
    assert agi_server.stats.requests == 1 and agi_server.stats.failed == 0


async def test_unknown_script_takes_the_failure_branch(lab_state: LabState, agi_server: AgiServer) -> None:
    async with ari_runtime(lab_state) as runtime:
        trace = await run_local_call(runtime, "unknown", "kt-lab-agi")
    assert trace.variables()["KT_RESULT"] == "failure-branch:unknown AGI script 'no-such-script'"
    assert agi_server.stats.failed == 1


async def test_half_header_client_does_not_stall_others(lab_state: LabState, agi_server: AgiServer) -> None:
    # A client sends half an agi_* block and drops; another stalls mid-block.
    dropper = socket.create_connection(("127.0.0.1", agi_server.port))
    dropper.sendall(b"agi_network: yes\nagi_network_script: echo\nagi_chan")
    dropper.close()
    staller = socket.create_connection(("127.0.0.1", agi_server.port))
    staller.sendall(b"agi_network: yes\nagi_network_scr")
    try:
        async with ari_runtime(lab_state) as runtime:
            started = asyncio.get_running_loop().time()
            trace = await run_local_call(runtime, "echo", "kt-lab-agi")
            elapsed = asyncio.get_running_loop().time() - started
        assert trace.variables()["KT_RESULT"] == "passed"
        assert elapsed < 5  # not held up by the stalled client
        await asyncio.sleep(2.5)  # past the 2 s header deadline
        assert agi_server.stats.bad_clients == 2
        assert agi_server.stats.active == 0
    finally:
        staller.close()


async def test_handler_exception_sets_failure_variables(lab_state: LabState) -> None:
    router = AgiRouter()

    async def echo(request: AgiRequest) -> None:
        raise RuntimeError("database down")

    router.add("echo", echo)
    server = AgiServer(router, "127.0.0.1", lab_state.agi_port)
    await server.start()
    try:
        async with ari_runtime(lab_state) as runtime:
            trace = await run_local_call(runtime, "echo", "kt-lab-agi")
    finally:
        await server.stop()
    variables = trace.variables()
    assert variables["KALLIOPE_AGI_STATUS"] == "FAILED"
    assert variables["KALLIOPE_AGI_ERROR"] == "database down"
    assert variables["KT_RESULT"].startswith("failed:FAILED")


async def test_caller_hangup_ends_request_cleanly(lab_state: LabState) -> None:
    router = AgiRouter()
    outcome: list[str] = []

    async def echo(request: AgiRequest) -> None:
        # Ask the channel to hang up, then keep using it: the pushed HANGUP
        # line must end the request instead of mis-pairing replies.
        await request.send_command("EXEC Hangup")
        try:
            await request.wait_for_digit(2000)
            await request.get_variable("KT_ECHO_IN")
        finally:
            outcome.append("hung_up" if request.hung_up else "still_up")

    router.add("echo", echo)
    server = AgiServer(router, "127.0.0.1", lab_state.agi_port)
    await server.start()
    try:
        async with ari_runtime(lab_state) as runtime:
            await run_local_call(runtime, "echo", "kt-lab-agi")
        await asyncio.sleep(0.2)
    finally:
        await server.stop()
    assert outcome == ["hung_up"]
    assert server.stats.hangups == 1 and server.stats.failed == 0
