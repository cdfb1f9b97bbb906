"""Fax FastAGI handlers for receptions carried by Asterisk's res_fax (T.38
callers, see ``kalliope-fax-in``): ``fax-admit`` admits the call within the
limits and gives ReceiveFax the instance's options and a file to write;
``fax-done`` (hang-up handler) hands the result and the file to the fax
service, exactly as the engine's receptions are handed over."""

from __future__ import annotations

import asyncio
import functools
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from kalliope_tel.asterisk import confgate
from kalliope_tel.dialplan_variables import (
    FAX_ADMIT,
    FAX_ECM,
    FAX_FILE,
    FAX_HEADER,
    FAX_IDENT,
    FAX_INSTANCE,
    FAX_MAXRATE,
    FAX_MINRATE,
    FAX_MODEMS,
    FAX_REACHED,
    FAX_SLOT,
    FAX_STARTED,
)
from kalliope_tel.fax.config import MODEMS

if TYPE_CHECKING:
    from kalliope_tel.asterisk.agi.server import AgiRequest, AgiRouter
    from kalliope_tel.container import Container
    from kalliope_tel.fax.service import FaxService

log = structlog.get_logger(__name__)
SPOOL_SUBDIR = "kalliope-fax"
# res_fax's modem names for ours (kalliope_tel.fax.config.MODEMS).
RES_FAX_MODEMS = {"v17": "v17", "v29": "v29", "v27ter": "v27"}


def _file_name(slot_id: int, unique_id: str) -> str:
    """The slot's own file, named with the channel's uniqueid too: two stores
    on one Asterisk both number slots from 1 and must not share a file."""
    return f"kt-fax-{slot_id}-{re.sub(r'[^0-9A-Za-z._-]', '', unique_id)[:64]}.tif"


def register(router: AgiRouter, container: Container) -> None:
    @functools.cache
    def service() -> FaxService:
        from kalliope_tel.fax.service import FaxService
        from kalliope_tel.serve import node_name

        return FaxService(container, node_name(container))

    async def admit(request: AgiRequest) -> None:
        pbx = confgate.slug(request.params.get("pbx") or "default")
        instance = request.params.get("instance", "")
        if not instance.isdigit():
            await request.set_variable(FAX_ADMIT, "no such fax instance")
            return
        admission = await service().admit(pbx, int(instance), request.unique_id)
        if not admission.admitted or admission.options is None:
            log.warning("fax.refused", channel=request.unique_id, reason=admission.reason, media="asterisk")
            await request.set_variable(FAX_ADMIT, "refused")
            return
        spool = await request.get_full_variable("${ASTSPOOLDIR}")
        options = admission.options
        modems = ",".join(RES_FAX_MODEMS[name] for name, bit in MODEMS.items() if options.modems & bit)
        # Values from the instance passed the fax config's checks (printable
        # ASCII, bounded) and go out as AGI arguments, quoted by the protocol.
        for name, value in (
            (FAX_SLOT, str(admission.slot_id)),
            (FAX_FILE, f"{spool}/{SPOOL_SUBDIR}/{_file_name(admission.slot_id, request.unique_id)}"),
            (FAX_IDENT, options.local_ident),
            (FAX_HEADER, options.header),
            (FAX_ECM, "yes" if options.ecm else "no"),
            (FAX_MINRATE, str(options.min_rate)),
            (FAX_MAXRATE, str(options.max_rate)),
            (FAX_MODEMS, modems),
            (FAX_STARTED, f"{time.time():.3f}"),
            (FAX_ADMIT, "yes"),
        ):
            await request.set_variable(name, value)

    async def done(request: AgiRequest) -> None:
        from kalliope_tel.fax.inbound import Reception
        from kalliope_tel.fax.models import Media

        slot = request.params.get("slot", "")
        pbx = confgate.slug(request.params.get("pbx") or "default")
        if not slot.isdigit():
            return  # refused before ReceiveFax: nothing was admitted
        get = request.get_variable
        status = (await get("FAXSTATUS")) or ""
        pages_text = (await get("FAXPAGES")) or "0"
        pages = int(pages_text) if pages_text.isdigit() else 0
        error = (await get("FAXERROR")) or ""
        rate = (await get("FAXBITRATE")) or "0"
        started = float((await get(FAX_STARTED)) or time.time())
        instance = int((await get(FAX_INSTANCE)) or 0)
        reception = Reception(
            call_id=request.unique_id,
            calling=(await request.get_full_variable("${CALLERID(num)}")) or "",
            reached=(await get(FAX_REACHED)) or "",
            started_at=datetime.fromtimestamp(started, UTC),
            ended_at=datetime.now(UTC),
            ok=status == "SUCCESS",
            reason="" if status == "SUCCESS" else (error or status or "no result from res_fax"),
            pages=pages,
            bit_rate=int(rate) if rate.isdigit() else 0,
            ecm=((await request.get_full_variable("${FAXOPT(ecm)}")) or "").lower() in ("yes", "1", "on"),
            remote_ident=(await get("REMOTESTATIONID")) or "",
            media=Media.ASTERISK,
        )
        written = (await get(FAX_FILE)) or ""
        tiff = await _local_file(container, pbx, int(slot), request.unique_id, written) if pages else None
        try:
            await service().received(pbx, instance, int(slot), reception, tiff)
        except Exception:
            # The pages stay where res_fax wrote them; the log says where.
            log.exception("fax.hand_over_failed", slot=slot, file=str(tiff), media="asterisk")
            raise

    router.add("fax-admit", admit)
    router.add("fax-done", done)


async def _local_file(container: Container, pbx_slug: str, slot_id: int, unique_id: str, written: str) -> Path | None:
    """The file ReceiveFax wrote, as this node reads it. Only the spool
    directory comes from the channel; the file name is the slot's own, so
    nothing the channel says can make this node read another file."""
    path = Path(written)
    if path.name != _file_name(slot_id, unique_id) or path.parent.name != SPOOL_SUBDIR:
        log.warning("fax.unexpected_file", slot=slot_id, file=written)
        return None

    from kalliope_tel.asterisk.endpoints import server_endpoints
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.tenancy.services import get_pbx

    def lookup() -> Path:
        with transaction(container.sessions) as session:
            pbx = get_pbx(session, pbx_slug)
            endpoints = server_endpoints(container.settings, pbx.asterisk_server)
        return Path(endpoints.local_path(str(path)))

    return await asyncio.to_thread(lookup)
