"""Hotel jobs run by ``serve``: the nightly "occupied rooms become dirty" reset."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import SQLAlchemyError

from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel.cleaning import run_nightly_reset
from kalliope_tel.tenancy.services import list_pbxs

if TYPE_CHECKING:
    from kalliope_tel.container import Container

log = structlog.get_logger(__name__)


def nightly_reset_all(container: Container, node: str) -> dict[str, int]:
    """Run every PBX's reset that is due; each PBX in its own transaction."""
    done: dict[str, int] = {}
    with container.sessions() as session:
        pbxs = [(p.id, p.slug) for p in list_pbxs(session)]
    for pbx_id, slug in pbxs:
        with transaction(container.sessions) as session:
            from kalliope_tel.tenancy.models import Pbx

            pbx = session.get(Pbx, pbx_id)
            if pbx is None:
                continue
            count = run_nightly_reset(session, pbx, node)
        if count is not None:
            done[slug] = count
    return done


async def nightly_reset_loop(container: Container, node: str, interval: float) -> None:
    while True:
        try:
            for slug, count in (await asyncio.to_thread(nightly_reset_all, container, node)).items():
                log.info("hotel.nightly_reset", pbx=slug, rooms=count, node=node)
        except SQLAlchemyError as exc:
            # The database may be restarting; the next tick tries again.
            log.warning("hotel.nightly_reset_failed", error=str(exc).splitlines()[0])
        await asyncio.sleep(interval)
