"""The FastAGI server process of ``bench agi``: production router, migrated DB."""

from __future__ import annotations

import asyncio
import sys

from kalliope_tel.asterisk.agi.server import AgiServer
from kalliope_tel.config import load_settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.logging import configure_logging
from kalliope_tel.tuning import settle_heap


async def main(port: int) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    container = Container(settings)
    migrate.upgrade(container.engine)
    server = AgiServer(container.agi_router(), "127.0.0.1", port)
    await server.start()
    settle_heap()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
