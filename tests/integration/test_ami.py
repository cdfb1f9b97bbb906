"""The AMI client on the lab Asterisk: login, originate, events, CDRs, reconnect."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from kalliope_tel.asterisk.ami.client import AmiClient, AmiUnavailable
from kalliope_tel.asterisk.ami.protocol import AmiActionError, AmiAuthError, AmiMessage
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.lab.ports import free_tcp_port
from tests.conftest import LAB_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]


def ami_for(state: LabState, secret: str | None = None) -> AmiClient:
    return AmiClient(
        "127.0.0.1",
        state.ami_port,
        state.ami_username,
        secret or state.ami_password,
        ping_interval=0.5,
        ping_timeout=1.0,
    )


async def test_login_success_and_actions(lab_state: LabState) -> None:
    ami = ami_for(lab_state)
    await ami.connect()
    try:
        assert ami.banner.startswith("Asterisk Call Manager/")
        assert (await ami.action("Ping")).get("Ping") == "Pong"
        assert "Asterisk 22." in await ami.command("core show version")
        reply = await ami.command("dialplan reload")
        assert "Dialplan reloaded" in reply
        with pytest.raises(AmiActionError):
            await ami.action("NoSuchAction")
        listing = await ami.action_list("CoreShowChannels")
        assert listing[-1].get("EventList") == "Complete"
    finally:
        await ami.aclose()


async def test_login_failure_is_loud(lab_state: LabState) -> None:
    ami = ami_for(lab_state, secret="not-the-secret")
    started = time.monotonic()
    with pytest.raises(AmiAuthError, match="login refused"):
        await ami.connect()
    assert time.monotonic() - started < 5
    assert not ami.connected.is_set()


async def test_unreachable_port_is_unavailable() -> None:
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "p", connect_timeout=2)
    with pytest.raises(AmiUnavailable):
        await ami.connect()


async def test_originate_returns_with_events_and_cdr(lab_state: LabState) -> None:
    ami = ami_for(lab_state)
    seen: list[AmiMessage] = []
    cdrs: list[AmiMessage] = []
    cdr_arrived = asyncio.Event()
    marker = uuid.uuid4().hex[:8]

    async def on_any(message: AmiMessage) -> None:
        seen.append(message)

    async def on_cdr(message: AmiMessage) -> None:
        if message.get("AccountCode") == marker:
            cdrs.append(message)
            cdr_arrived.set()

    ami.on("*", on_any)
    ami.on("Cdr", on_cdr)
    await ami.connect()
    try:
        answered = await ami.originate(
            "Local/s@phone-press19",
            context="phone-answer",
            exten="s",
            timeout_ms=15000,
            variables={"CDR(accountcode)": marker, "KT_LINGER": "8"},
        )
        assert answered.get("Response") == "Success" and answered.get("Reason") == "4"
        busy = await ami.originate("Local/s@phone-busy", context="phone-answer", exten="s", timeout_ms=5000)
        assert busy.get("Response") == "Failure" and busy.get("Reason") == "5"
        await asyncio.wait_for(cdr_arrived.wait(), 20)
    finally:
        await ami.aclose()
    digits = [m.get("Digit") for m in seen if m.get("Event") == "DTMFEnd" and m.get("Direction") == "Received"]
    assert "1" in digits and "9" in digits
    assert cdrs[0].get("Disposition") == "ANSWERED"


async def test_reconnects_after_asterisk_restart() -> None:
    lab = LabInstance(LAB_ROOT, f"pytest-ami-{uuid.uuid4().hex[:6]}")
    state = lab.start()
    ami = ami_for(state)
    try:
        await ami.connect()
        await asyncio.to_thread(lab.restart, crash=True)
        async with asyncio.timeout(30):
            while ami.reconnects < 1 or not ami.connected.is_set():
                await asyncio.sleep(0.1)
        assert (await ami.action("Ping")).get("Ping") == "Pong"
        result = await ami.originate(
            "Local/s@phone-answer",
            context="phone-answer",
            exten="s",
            timeout_ms=5000,
            variables={"KT_LINGER": "1"},
        )
        assert result.get("Reason") == "4"
    finally:
        await ami.aclose()
        lab.purge()


async def test_keepalive_notices_a_frozen_asterisk() -> None:
    # SIGSTOP: the socket stays open but nothing answers, the fault a ping
    # without a timeout never notices.
    import os
    import signal

    lab = LabInstance(LAB_ROOT, f"pytest-frozen-{uuid.uuid4().hex[:6]}")
    state = lab.start()
    ami = ami_for(state)
    try:
        await ami.connect()
        os.kill(state.pid, signal.SIGSTOP)
        try:
            async with asyncio.timeout(10):
                while ami.connected.is_set():
                    await asyncio.sleep(0.1)
            with pytest.raises(AmiUnavailable):
                await ami.action("Ping", timeout=1)
        finally:
            os.kill(state.pid, signal.SIGCONT)
        async with asyncio.timeout(30):
            while not ami.connected.is_set():
                await asyncio.sleep(0.1)
        assert ami.reconnects >= 1
        assert (await ami.action("Ping")).get("Ping") == "Pong"
    finally:
        await ami.aclose()
        lab.purge()
