"""The outbound listener's gate (credentials, paths, /health) and the
Asterisk configuration it is paired with, without Asterisk: a websockets
client plays Asterisk's handshake (the lab tests drive the real one)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from kalliope_tel.asterisk import confgate as gate
from kalliope_tel.asterisk.ari.models import Channel, Event
from kalliope_tel.asterisk.ari.outbound import OutboundListener
from kalliope_tel.asterisk.outbound_conf import ARI_FILE, CLIENT_FILE, outbound_password, render_outbound
from kalliope_tel.config import Settings

PASSWORD = "s3cret-0123456789"
EAST_PASSWORD = "east-s3cret-98765"


class FakeClient:
    def __init__(self) -> None:
        self.hung_up: list[str] = []
        self.channels: list[Channel] = []

    async def list_channels(self) -> list[Channel]:
        return self.channels

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.hung_up.append(channel_id)


class FakeRuntime:
    """Records what the listener feeds it, as AriRuntime's public surface."""

    def __init__(self) -> None:
        self.client = FakeClient()
        self.events: list[Event] = []
        self.owners: dict[str, str] = {}
        self.lost: list[set[str]] = []

    async def feed(self, event: Event) -> None:
        self.events.append(event)
        if event.type == "StasisStart" and event.channel_id:
            self.owners[event.channel_id] = "fax"

    def owner(self, channel_id: str) -> str | None:
        return self.owners.get(channel_id)

    def forget(self, channel_id: str) -> None:
        self.owners.pop(channel_id, None)

    async def lose(self, channel_ids: set[str], *, hang_up: bool = False) -> None:
        self.lost.append(channel_ids)
        for cid in channel_ids:
            self.owners.pop(cid, None)
            if hang_up:
                self.client.hung_up.append(cid)


def _auth(user: str = "asterisk", password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@asynccontextmanager
async def listening(healthy: bool = True, orphan_seconds: float = 0.2) -> AsyncIterator[tuple[OutboundListener, Any]]:
    runtimes: dict[str, Any] = {"default": FakeRuntime(), "east": FakeRuntime()}

    async def health() -> bool:
        return healthy

    credentials = {"default": ("asterisk", PASSWORD), "east": ("asterisk", EAST_PASSWORD)}
    listener = OutboundListener("127.0.0.1:0", credentials, runtimes, health=health, orphan_seconds=orphan_seconds)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.ready.wait(), 5)
    try:
        yield listener, runtimes
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _connect(url: str, headers: dict[str, str] | None = None) -> Any:
    """As Asterisk connects: Basic auth and the 'ari' subprotocol."""
    return connect(url, additional_headers=_auth() if headers is None else headers, subprotocols=["ari"])  # type: ignore[list-item]


def _event(kind: str, app: str, channel: str | None = None, **extra: Any) -> str:
    data: dict[str, Any] = {"type": kind, "application": app, **extra}
    if channel:
        data["channel"] = {"id": channel, "name": "Local/700@x-0001;2", "state": "Ring"}
    return json.dumps(data)


async def test_wrong_or_missing_credentials_are_refused_before_the_upgrade() -> None:
    async with listening() as (listener, runtimes):
        url = f"ws://127.0.0.1:{listener.port}/ari"
        for headers in ({}, _auth(password="wrong-password-00"), _auth(user="someone"), {"Authorization": "Basic !!"}):
            with pytest.raises(InvalidStatus) as refused:
                async with _connect(url, headers):
                    pass
            assert refused.value.response.status_code == 401
        # Each Asterisk has its own password: the default one cannot send events as "east", nor "east" as
        # the default one, and a path naming no Asterisk gets the same answer.
        for path, headers in (("/ari/east", _auth()), ("/ari", _auth(password=EAST_PASSWORD)),
                              ("/ari/west", _auth())):  # fmt: skip
            with pytest.raises(InvalidStatus) as refused:
                async with _connect(f"ws://127.0.0.1:{listener.port}{path}", headers):
                    pass
            assert refused.value.response.status_code == 401, path
        async with _connect(f"ws://127.0.0.1:{listener.port}/ari/east", _auth(password=EAST_PASSWORD)):
            pass
        assert listener.refused == 7 and listener.accepted == 1
        assert runtimes["default"].events == []


async def test_the_path_names_the_asterisk_and_events_reach_its_runtime_in_order() -> None:
    async with listening() as (listener, runtimes):
        base = f"ws://127.0.0.1:{listener.port}/ari"
        with pytest.raises(InvalidStatus) as unknown:
            async with _connect(f"{base}/west"):
                pass
        assert unknown.value.response.status_code == 401  # as a wrong password: nothing learnt
        async with _connect(f"{base}/east", _auth(password=EAST_PASSWORD)) as ws:
            assert ws.subprotocol == "ari"
            await ws.send(_event("ApplicationRegistered", "kalliope:Local/700@x-0001;2"))
            await ws.send(_event("StasisStart", "kalliope:Local/700@x-0001;2", "c1", args=["fax", "receive"]))
            await ws.send(_event("ChannelDtmfReceived", "kalliope:Local/700@x-0001;2", "c1", digit="1"))
            await ws.send(_event("StasisEnd", "kalliope:Local/700@x-0001;2", "c1"))
        await asyncio.sleep(0.1)
        assert [e.type for e in runtimes["east"].events] == [
            "ApplicationRegistered",
            "StasisStart",
            "ChannelDtmfReceived",
            "StasisEnd",
        ]
        assert runtimes["default"].events == []
        assert runtimes["east"].owners == {}  # left Stasis: forgotten, not reported lost
        assert runtimes["east"].lost == []


async def test_a_websocket_that_drops_mid_call_hangs_the_call_up_and_reports_it_lost() -> None:
    async with listening() as (listener, runtimes):
        async with _connect(f"ws://127.0.0.1:{listener.port}/ari/") as ws:
            await ws.send(_event("StasisStart", "kalliope:Local/700@x-0001;2", "c2", args=["fax", "receive"]))
        await asyncio.sleep(0.1)
        assert runtimes["default"].lost == [{"c2"}]
        assert runtimes["default"].client.hung_up == ["c2"]


async def test_a_reconnected_orphan_without_stasis_start_is_hung_up() -> None:
    async with listening(orphan_seconds=0.2) as (listener, runtimes):
        runtime = runtimes["default"]
        runtime.client.channels = [Channel(id="c3", name="Local/700@x-0001;2"), Channel(id="c4", name="Other/1")]
        async with _connect(f"ws://127.0.0.1:{listener.port}/ari") as ws:
            await ws.send(_event("ApplicationRegistered", "kalliope:Local/700@x-0001;2"))
            await asyncio.sleep(0.5)
            assert runtime.client.hung_up == ["c3"]
            assert listener.orphans_hung_up == 1
        # A fresh call's StasisStart within the bound disarms it.
        runtime.client.hung_up.clear()
        async with _connect(f"ws://127.0.0.1:{listener.port}/ari") as ws:
            await ws.send(_event("ApplicationRegistered", "kalliope:Local/700@x-0001;2"))
            await ws.send(_event("StasisStart", "kalliope:Local/700@x-0001;2", "c3", args=["fax"]))
            await asyncio.sleep(0.5)
            assert runtime.client.hung_up == []


async def test_health_answers_load_balancers_and_stopping_closes_the_door() -> None:
    async with listening() as (listener, runtimes), httpx.AsyncClient() as http:
        ok = await http.get(f"http://127.0.0.1:{listener.port}/health")
        assert (ok.status_code, ok.text.strip()) == (200, "ok")
        # A call in progress keeps its websocket while the node stops.
        async with _connect(f"ws://127.0.0.1:{listener.port}/ari") as ws:
            listener.stop_accepting()
            with pytest.raises(httpx.ConnectError):  # new calls and checks: refused, the balancer moves on
                await http.get(f"http://127.0.0.1:{listener.port}/health")
            await ws.send(_event("StasisStart", "kalliope:Local/700@x-0001;2", "c5", args=["fax"]))
            await asyncio.sleep(0.1)
            assert [e.type for e in runtimes["default"].events] == ["StasisStart"]
    async with listening(healthy=False) as (listener, _runtimes), httpx.AsyncClient() as http:
        assert (await http.get(f"http://127.0.0.1:{listener.port}/health")).status_code == 503


def test_rendered_asterisk_configuration() -> None:
    settings = Settings(
        ari_app="kalliope",
        ari_outbound_bind="127.0.0.1:8765",
        ari_outbound_uri="ws://lb.example.net:9000/ari",
        ari_outbound_password=PASSWORD,  # type: ignore[arg-type]
    )
    files = render_outbound(settings, "kalliope", server="east")
    assert "apps = kalliope\n" in files[ARI_FILE] and "local_ari_user = kalliope\n" in files[ARI_FILE]
    client = files[CLIENT_FILE]
    assert "uri = ws://lb.example.net:9000/ari/east\n" in client
    # This Asterisk's own password, derived from the master one, which it never sees.
    assert f"password = {outbound_password(settings, 'east')}\n" in client and PASSWORD not in client
    assert outbound_password(settings, "east") != outbound_password(settings, "")
    assert "connection_type = per_call_config\n" in client
    assert "reconnect_attempts = 3\n" in client
    off = render_outbound(Settings(ari_app="kalliope"), "kalliope")
    assert "[" not in off[ARI_FILE] + off[CLIENT_FILE]  # inbound mode: no section at all


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ari_outbound_uri", "ws://lb:9000/ari\n[evil]\ntype=user"),
        ("ari_outbound_uri", "ws://lb:9000/ari;x"),
        ("ari_outbound_password", "short"),
        ("ari_outbound_password", "abcdefghijkl;#exec"),
        ("ari_app", "kalliope\n#exec /bin/sh"),
    ],
)
def test_nothing_unsafe_reaches_the_files(field: str, value: str) -> None:
    values: dict[str, Any] = {
        "ari_app": "kalliope",
        "ari_outbound_bind": "127.0.0.1:8765",
        "ari_outbound_password": PASSWORD,
        field: value,
    }
    with pytest.raises(gate.UnsafeValue):
        render_outbound(Settings(**values), "kalliope")


def test_outbound_mode_needs_a_password() -> None:
    with pytest.raises(ValueError, match="ari_outbound_password"):
        Settings(ari_outbound_bind="127.0.0.1:8765")


SHOWN = """
Name                             Type            Apps                             Status  URI
-------------------------------- --------------- -------------------------------- ------- -------------------------
kalliope-outbound                per_call_config kalliope                         {status}   ws://lb:8765/ari
"""


def test_doctor_compares_this_nodes_mode_with_asterisk() -> None:
    from kalliope_tel.doctor import outbound_check

    valid, invalid = SHOWN.format(status="valid"), SHOWN.format(status="invalid")
    assert outbound_check(True, "kalliope", valid).ok
    assert "ws://lb:8765/ari" in outbound_check(True, "kalliope", valid).detail
    assert not outbound_check(True, "kalliope", invalid).ok
    missing = outbound_check(True, "kalliope", "")
    assert not missing.ok and "asterisk apply" in missing.fix
    assert outbound_check(False, "kalliope", "").ok
    mixed = outbound_check(False, "kalliope", valid)
    assert not mixed.ok and "inbound mode" in mixed.detail
    assert outbound_check(False, "other", valid).ok


async def test_shutdown_never_waits_on_a_calls_websocket() -> None:
    # A call's websocket still open when the node has stopped accepting and
    # is cancelled at the end of its shutdown: closed, run() returns.
    runtimes: dict[str, Any] = {"default": FakeRuntime()}
    listener = OutboundListener("127.0.0.1:0", {"default": ("asterisk", PASSWORD)}, runtimes)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.ready.wait(), 5)
    async with _connect(f"ws://127.0.0.1:{listener.port}/ari") as ws:
        await ws.send(_event("StasisStart", "kalliope:Local/700@x-0001;2", "c6", args=["fax"]))
        listener.stop_accepting()
        await asyncio.sleep(0.1)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, "the listener did not finish with a call's websocket open"
