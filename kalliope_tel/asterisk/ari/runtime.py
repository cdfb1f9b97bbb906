"""The one supervised ARI connection that every Stasis application shares.

Theory of operation:

* Applications register under a name. A call enters one with
  ``Stasis(<ari_app>,<name>,...)`` in the dialplan or ``appArgs=<name>,...`` on
  originate; ``StasisStart`` is routed on that first argument.
* From then on the channel is *owned* by that application: every event about
  it is delivered to it, in order (``OrderedDispatcher``), until
  ``ChannelDestroyed``. Channels an application originates are owned from the
  moment it calls ``track`` (before any event), so "no answer" outcomes, which
  never produce ``StasisStart``, still reach it.
* When the websocket drops, events are lost. After reconnecting, the runtime
  asks Asterisk which channels still exist and tells each application which of
  its channels vanished meanwhile (``on_channels_lost``), so a call flow can
  record the attempt as failed instead of waiting forever.
* A ``StasisStart`` naming no registered application is sent back to the
  dialplan (``continue``), where the next priority can branch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

import structlog

from kalliope_tel.asterisk.ari.client import AriClient, over_http
from kalliope_tel.asterisk.ari.dispatch import OrderedDispatcher
from kalliope_tel.asterisk.ari.errors import AriError
from kalliope_tel.asterisk.ari.models import ChannelDestroyed, Event, StasisStart

log = structlog.get_logger(__name__)

_NO_CHANNEL = "-"


# Events the runtime itself acts on, whatever the applications need.
# RESTResponse: the answers to REST requests sent over the websocket (see
# AriClient.request); filtered out, every such request would time out.
RUNTIME_EVENT_TYPES = frozenset({"StasisStart", "StasisEnd", "ChannelDestroyed", "RESTResponse"})


class StasisApplication(Protocol):
    # The event types the application acts on. When every registered
    # application says, Asterisk is asked to send only those (plus the
    # runtime's own): a wake-up call brought 43 events, 24 of them
    # ChannelVarset that nobody reads, each a websocket frame, a JSON decode
    # and a validation. An application without it gets every event.
    @property
    def event_types(self) -> frozenset[str] | None: ...

    async def on_event(self, event: Event) -> None: ...

    async def on_channels_lost(self, channel_ids: set[str]) -> None: ...


class AriRuntime:
    def __init__(self, client: AriClient) -> None:
        self.client = client
        self._apps: dict[str, StasisApplication] = {}
        self._owners: dict[str, str] = {}  # channel id -> application name
        self._listeners: set[asyncio.Queue[Event]] = set()
        self._dispatcher: OrderedDispatcher[Event] = OrderedDispatcher(self._deliver)
        self.reconnects = 0
        self._connected_once = False

    # ------------------------------------------------------------ registry
    def register(self, name: str, app: StasisApplication) -> None:
        if name in self._apps:
            raise ValueError(f"Stasis application {name!r} is registered already")
        self._apps[name] = app

    def track(self, channel_id: str, app_name: str) -> None:
        """Declare that ``app_name`` owns ``channel_id`` (call before originating)."""
        self._owners[channel_id] = app_name

    def owner(self, channel_id: str) -> str | None:
        return self._owners.get(channel_id)

    def forget(self, channel_id: str) -> None:
        self._owners.pop(channel_id, None)

    async def lose(self, channel_ids: set[str], *, hang_up: bool = False) -> None:
        """Tell each owner that these channels are beyond reach (their events
        go elsewhere now); with ``hang_up``, end the calls first so nobody is
        left in silence."""
        lost_by_app: dict[str, set[str]] = {}
        for cid in channel_ids:
            name = self._owners.pop(cid, None)
            if name is not None:
                lost_by_app.setdefault(name, set()).add(cid)
            if hang_up:
                with contextlib.suppress(AriError):
                    await self.client.hangup(cid)
        await self._report_lost(lost_by_app)

    async def _report_lost(self, lost_by_app: dict[str, set[str]]) -> None:
        for name, lost in lost_by_app.items():
            log.warning("ari.channels_lost", app=name, count=len(lost))
            app = self._apps.get(name)
            if app is not None:
                try:
                    await app.on_channels_lost(lost)
                except Exception:
                    log.exception("ari.on_channels_lost_failed", app=name)

    def owned_by(self, app_name: str) -> set[str]:
        return {cid for cid, name in self._owners.items() if name == app_name}

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue that receives a copy of every event while the block runs."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)

    # ------------------------------------------------------------ running
    async def run(self) -> None:
        await self.client.run_events(self._on_event, on_connected=self._on_connected)

    def event_filter(self) -> list[str] | None:
        """The event types to ask Asterisk for, or None for all of them."""
        wanted = set(RUNTIME_EVENT_TYPES)
        for app in self._apps.values():
            types = getattr(app, "event_types", None)
            if types is None:
                return None
            wanted |= types
        return sorted(wanted) if self._apps else None

    async def apply_event_filter(self) -> None:
        """Ask Asterisk for only the events the applications act on. Runs on
        every connection; after registering an application on a runtime that
        is already connected, call it again."""
        allowed = self.event_filter()
        if allowed is None:
            return
        for name in self.client.apps:
            try:
                await self.client.filter_events(name, allowed)
            except AriError as exc:  # unfiltered still works, only dearer
                log.warning("ari.event_filter_failed", app=name, error=str(exc))

    async def _on_connected(self) -> None:
        # Every connection: a filter set before Asterisk restarted is gone.
        await self.apply_event_filter()
        if not self._connected_once:
            # Nothing can have been lost before the first connection, and
            # nothing is awaited here: events flow at once. (A channel tracked
            # while this awaited used to be judged lost before it existed.)
            self._connected_once = True
            return
        self.reconnects += 1
        # Only channels tracked before Asterisk is asked: one tracked while the
        # list is on its way may be originated just now and not listed yet.
        candidates = dict(self._owners)
        if not candidates:
            return
        try:
            present = {c.id for c in await self.client.list_channels()}
        except AriError as exc:
            log.warning("ari.reconcile_failed", error=str(exc))
            return
        lost_by_app: dict[str, set[str]] = {}
        for cid, name in candidates.items():
            if cid not in present and self._owners.get(cid) == name:
                lost_by_app.setdefault(name, set()).add(cid)
                del self._owners[cid]
        await self._report_lost(lost_by_app)

    async def feed(self, event: Event) -> None:
        """An event from any websocket of this Asterisk (inbound, or one that
        Asterisk opened to us: ``outbound``)."""
        await self._on_event(event)

    async def _on_event(self, event: Event) -> None:
        if self.client.closing:
            return  # events still arriving while the websocket closes are not ours to act on
        for queue in self._listeners:
            queue.put_nowait(event)
        if isinstance(event, StasisStart) and event.channel.id not in self._owners:
            name = event.args[0] if event.args else ""
            if name in self._apps:
                self._owners[event.channel.id] = name
            elif not self._listeners:
                log.warning("ari.unknown_application", name=name, channel=event.channel.id)
                with contextlib.suppress(AriError):
                    await self.client.continue_in_dialplan(event.channel.id)
                return
        self._dispatcher.submit(event.channel_id or _NO_CHANNEL, event)

    async def _deliver(self, event: Event) -> None:
        cid = event.channel_id
        name = self._owners.get(cid) if cid else None
        if isinstance(event, ChannelDestroyed) and cid:
            self._owners.pop(cid, None)
        app = self._apps.get(name) if name else None
        if app is None:
            return
        if getattr(app, "rest_over_websocket", True):
            await app.on_event(event)
        else:  # its requests (and the tasks it starts here) over HTTP
            with over_http():
                await app.on_event(event)

    async def aclose(self) -> None:
        await self._dispatcher.aclose()
