"""``kalliope-tel serve``: run the engines and applications until SIGTERM.

Start order: FastAGI first (the dialplan may call it at once), then AMI and
ARI. Both Asterisk connections retry by themselves, so ``serve`` starts even
while Asterisk is still booting and keeps running through its restarts.
Shutdown: stop accepting FastAGI, give requests in progress a grace period,
then close ARI and AMI; database sessions are per request and committed or
rolled back as a unit, so nothing is left half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
from collections.abc import Callable

import structlog

from kalliope_tel.asterisk.ami.client import AmiClient
from kalliope_tel.asterisk.ami.protocol import AmiAuthError, AmiError
from kalliope_tel.asterisk.ari.errors import AriAuthError
from kalliope_tel.asterisk.ari.runtime import AriRuntime
from kalliope_tel.container import Container
from kalliope_tel.hotel.jobs import nightly_reset_loop
from kalliope_tel.tuning import settle_heap
from kalliope_tel.wakeup.scheduler import WakeupScheduler

log = structlog.get_logger(__name__)
# Seconds that wake-up calls in progress get to finish at shutdown.
SHUTDOWN_GRACE = 20.0


async def _connect_ami(ami: AmiClient, stop: asyncio.Event) -> None:
    """Keep trying the first AMI login; later drops are handled by the client."""
    delay = 0.5
    while not stop.is_set():
        try:
            await ami.connect()
            return
        except AmiAuthError:
            raise
        except AmiError as exc:
            log.warning("serve.ami_waiting", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 8.0)


async def serve(container: Container, *, ready: Callable[[], None] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    agi = container.agi_server()
    await agi.start()
    node = container.settings.node_name or f"{socket.gethostname()}:{os.getpid()}"
    # Asterisk delivers an application's events to one websocket only (the last
    # to subscribe), so each node originates under an application of its own;
    # the shared name only receives calls the dialplan sends to Stasis().
    node_app = f"{container.settings.ari_app}-{re.sub(r'[^A-Za-z0-9_-]', '-', node)}"
    ari = container.ari_client(apps=[container.settings.ari_app, node_app])
    runtime = AriRuntime(ari)
    container.register_stasis_apps(runtime)
    from ari_apps.wakeup import APP_NAME, WakeupApplication

    wakeup_app = WakeupApplication(runtime, container, originate_app=node_app)
    runtime.register(APP_NAME, wakeup_app)
    from ari_apps.fax import APP_NAME as FAX_APP
    from ari_apps.fax import FaxApplication

    # Stasis(<ari_app>,fax,receive) receives a fax on the call; pages land in
    # <data_dir>/fax/rx until the fax service (register, Mail2Fax) takes them.
    fax_app = FaxApplication(runtime, spool_dir=container.settings.data_dir / "fax", ari_app=node_app)
    runtime.register(FAX_APP, fax_app)
    ami = container.ami_client()
    interval = container.settings.scheduler_interval_seconds
    wakeup_scheduler = WakeupScheduler(container, wakeup_app, node, tick=min(interval, 1.0))
    wakeup_app.on_line_free = wakeup_scheduler.poke
    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(runtime.run(), name="ari"),
        asyncio.create_task(_connect_ami(ami, stop), name="ami-connect"),
        asyncio.create_task(nightly_reset_loop(container, node, interval), name="hotel-nightly"),
        asyncio.create_task(wakeup_scheduler.run(ari.connected), name="wakeup"),
    ]
    settle_heap()
    log.info("serve.started", asterisk=container.endpoints.source, agi_port=agi.port)
    if ready is not None:
        ready()
    stopper = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in tasks.copy():
                if task not in done:
                    continue
                tasks.remove(task)
                exc = task.exception()
                if isinstance(exc, (AriAuthError, AmiAuthError)):
                    raise exc
                if exc is not None:
                    log.error("serve.task_failed", task=task.get_name(), error=repr(exc))
    finally:
        log.info("serve.stopping")
        # No new work: stop the schedulers first (claims are transactions, so
        # a cancelled tick leaves nothing half-done).
        for task in tasks:
            if task.get_name() in ("wakeup", "hotel-nightly"):
                task.cancel()
        await agi.stop(grace=10.0)
        # Wake-up calls on the phone now finish and record their outcome; any
        # still running after the grace period are recovered by the watchdog.
        if not await wakeup_app.wait_idle(SHUTDOWN_GRACE):
            log.warning("serve.unfinished_wakeup_calls", count=wakeup_app.active)
        if not await fax_app.wait_idle(SHUTDOWN_GRACE):
            log.warning("serve.unfinished_fax_calls", count=len(fax_app.calls))
        await runtime.aclose()
        await ari.aclose()
        await ami.aclose()
        stopper.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("serve.stopped")
