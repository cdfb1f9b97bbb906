"""The FastAGI server process of ``bench agi``: the production router on a
migrated store seeded as a small hotel (so the hotel handlers do their
real work: room 101 checked in, 102 free, classes, a template with limits)."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import func, select

from kalliope_tel.asterisk.agi.server import AgiServer
from kalliope_tel.config import load_settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.logging import configure_logging
from kalliope_tel.tuning import settle_heap

ROOMS = 40


def seed(container: Container) -> None:
    from kalliope_tel.hotel import services, stays
    from kalliope_tel.hotel.models import ClassKind, Room
    from kalliope_tel.tenancy.services import get_pbx

    with transaction(container.sessions) as session:
        if session.scalar(select(func.count(Room.id))):
            return  # seeded by an earlier run on this database
        pbx = get_pbx(session)
        services.ensure_default_classes(session, pbx, "kalliope-trunk")
        services.create_template(session, pbx, "std", calls_limit=4, busy_level=2)
        for n in range(ROOMS):
            services.create_room(session, pbx, str(101 + n), f"Room {101 + n}", "std")
        for n in range(0, ROOMS, 2):
            stays.check_in(session, pbx, str(101 + n), f"Guest {n}", outbound=ClassKind.STANDARD)


async def main(port: int) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    container = Container(settings)
    migrate.upgrade(container.engine)
    seed(container)
    server = AgiServer(container.agi_router(), "127.0.0.1", port)
    await server.start()
    settle_heap()
    print("ready " + ",".join(server.router.names), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
