"""A web node for ``bench web`` and ``bench logins``: the production app and
change feed on a free port of loopback. Prints the port, then serves until
stdin closes. ``--behind-proxy``: trust X-Forwarded-For from loopback (the
logins bench gives each guesser its own address, as a proxy would)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.logging import configure_logging
from kalliope_tel.web.feature import build_node, listen_socket
from kalliope_tel.web.server import run_http


async def main(database_url: str, behind_proxy: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kt-bench-web-"))
    container = Container(Settings(database_url=database_url, data_dir=folder, http_trust_forwarded=behind_proxy))
    web = build_node(container, "bench")
    sock = listen_socket("127.0.0.1:0")
    print(sock.getsockname()[1], flush=True)
    tasks = [asyncio.create_task(run_http(web.app, sock)), asyncio.create_task(web.feed.run())]
    await asyncio.to_thread(sys.stdin.read)  # the bench closes our stdin to stop us
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    configure_logging("warning", "console")
    asyncio.run(main(sys.argv[1], "--behind-proxy" in sys.argv[2:]))
