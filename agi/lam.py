"""LAM dial-in: ask for the meeting PIN (three tries), check it and the
meeting's window, name the conference and the caller's ConfBridge profile."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from kalliope_tel.db.engine import transaction
from kalliope_tel.dialplan_variables import LAM_CONFERENCE, LAM_PROFILE, LAM_RESULT
from kalliope_tel.lam import services
from kalliope_tel.tenancy.services import get_pbx

if TYPE_CHECKING:
    from kalliope_tel.asterisk.agi.server import AgiRequest, AgiRouter
    from kalliope_tel.container import Container

TRIES = 3
# ConfBridge user profiles (asterisk-conf/confbridge.conf): guests wait for a
# moderator (the marked user) and leave with the last one.
PROFILES = {True: "kt_lam_moderator", False: "kt_lam_guest"}


def register(router: AgiRouter, container: Container) -> None:
    def check(slug: str | None, pin: str) -> services.DialIn:
        with transaction(container.sessions) as session:
            return services.dial_in(session, get_pbx(session, slug), pin)

    async def dial_in(request: AgiRequest) -> None:
        slug = request.params.get("pbx") or None
        verdict = services.DialIn("wrong-pin")
        for attempt in range(TRIES):
            pin = await request.get_data("conf-getpin", timeout_ms=10000, max_digits=12)
            verdict = await asyncio.to_thread(check, slug, pin)
            if verdict.result != "wrong-pin" or attempt == TRIES - 1:
                break
            await request.play("conf-invalidpin")
        await request.set_variable(LAM_RESULT, verdict.result)
        if verdict.result == "join":
            await request.set_variable(LAM_CONFERENCE, verdict.conference)
            await request.set_variable(LAM_PROFILE, PROFILES[verdict.moderator])

    router.add("lam-dial-in", dial_in)
