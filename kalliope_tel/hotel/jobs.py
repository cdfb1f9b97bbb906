"""Hotel jobs run by ``serve``: the nightly "occupied rooms become dirty" reset."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import SQLAlchemyError

from kalliope_tel.hotel.cleaning import run_nightly_reset
from kalliope_tel.tenancy.services import for_each_pbx

if TYPE_CHECKING:
    from kalliope_tel.container import Container

log = structlog.get_logger(__name__)


def nightly_reset_all(container: Container, node: str) -> dict[str, int]:
    """Run every PBX's reset that is due; rooms marked dirty, by PBX slug."""
    results = for_each_pbx(
        container.sessions,
        # PBXs without the hotel module have no cleaning to reset.
        lambda session, pbx: run_nightly_reset(session, pbx, node) if pbx.hotel_enabled else None,
    )
    return {slug: count for slug, count in results.items() if count is not None}


async def nightly_reset_loop(container: Container, node: str, interval: float) -> None:
    while True:
        try:
            for slug, count in (await asyncio.to_thread(nightly_reset_all, container, node)).items():
                log.info("hotel.nightly_reset", pbx=slug, rooms=count, node=node)
        except SQLAlchemyError as exc:
            # The database may be restarting; the next tick tries again.
            log.warning("hotel.nightly_reset_failed", error=str(exc).splitlines()[0])
        await asyncio.sleep(interval)
