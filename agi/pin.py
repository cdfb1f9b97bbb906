"""The service PIN, for every PIN-protected phone service: the dialplan's
``Gosub(kalliope-service-pin,s,1)`` runs ``service-pin`` once per try (up
to three in a call; three wrong ones in all, whatever the calls, pause the
PIN), which asks for the calling extension's PIN and answers
``KALLIOPE_PIN_RESULT``: ok, wrong, paused or no_pin."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from kalliope_tel.db.engine import transaction
from kalliope_tel.dialplan_variables import FROM_EXTEN, PIN_RESULT
from kalliope_tel.extensions import services
from kalliope_tel.tenancy.services import get_pbx

if TYPE_CHECKING:
    from kalliope_tel.asterisk.agi.server import AgiRequest, AgiRouter
    from kalliope_tel.container import Container


def register(router: AgiRouter, container: Container) -> None:
    def check(slug: str | None, number: str, pin: str) -> str:
        with transaction(container.sessions) as session:
            return services.check_pin(session, get_pbx(session, slug), number, pin)

    async def service_pin(request: AgiRequest) -> None:
        """One try (the dialplan asks again after a wrong one, up to three)."""
        slug = request.params.get("pbx") or None
        number = request.params.get("exten") or await request.get_variable(FROM_EXTEN) or ""
        pin = await request.get_data("agent-pass", timeout_ms=8000, max_digits=8)
        verdict = await asyncio.to_thread(check, slug, number, pin)
        await request.set_variable(PIN_RESULT, verdict)

    router.add("service-pin", service_pin)
