"""uvicorn inside ``serve``'s event loop, on a socket bound at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette


class _Server(uvicorn.Server):
    """uvicorn inside serve: serve owns SIGTERM and SIGINT, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_http(app: Starlette, sock: socket.socket) -> None:
    """Serve ``app`` on the bound ``sock`` until cancelled."""
    # An idle keep-alive connection is closed after 20 s (uvicorn's default is
    # 5): a client that sends on it just as it closes is reset, which a
    # loaded node made happen to the API walk's client with 5.
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        proxy_headers=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=20,
    )
    server = _Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await asyncio.shield(task)
        await asyncio.Event().wait()  # uvicorn stops only when told: returning would read as a crash
    except asyncio.CancelledError:
        # serve is stopping: close the listener and the event streams, briefly.
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        raise
