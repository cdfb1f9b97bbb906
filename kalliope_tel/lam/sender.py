"""The job that sends owed invitation mails (any node; each mail once)."""

from __future__ import annotations

import asyncio

import structlog

from kalliope_tel.container import Container
from kalliope_tel.db.engine import transaction
from kalliope_tel.lam import invitations
from kalliope_tel.mail.smtp import MailNotSent, send

log = structlog.get_logger(__name__)


async def send_due(container: Container, node: str, limit: int = 20) -> int:
    """Send the mails that are due, one claim at a time, each send cut at
    ``SEND_SECONDS`` and recorded before the next is claimed; returns how many were sent."""
    settings = container.settings

    def claim() -> list[invitations.Claimed]:
        with transaction(container.sessions) as session:
            return invitations.claim(session, settings, node, limit=1)

    def finish(invitation_id: int, error: str | None, permanent: bool) -> bool:
        with transaction(container.sessions) as session:
            return invitations.finish(session, invitation_id, node, error, permanent=permanent)

    sent = 0
    for _ in range(limit):
        claimed = await asyncio.to_thread(claim)
        if not claimed:
            break
        item = claimed[0]
        error, permanent = None, False
        try:
            await asyncio.wait_for(send(settings, item.message), invitations.SEND_SECONDS)
        except MailNotSent as exc:
            error, permanent = str(exc), exc.permanent
        except TimeoutError:
            error = f"the mail server did not finish within {invitations.SEND_SECONDS:.0f} s"
        if error is not None:
            log.warning("lam.invitation_not_sent", invitation=item.id, reason=error, permanent=permanent)
        if not await asyncio.to_thread(finish, item.id, error, permanent):
            log.warning("lam.invitation_claim_lost", invitation=item.id)
        elif error is None:
            sent += 1
    return sent


async def sender_loop(container: Container, node: str, tick: float) -> None:
    while True:
        await send_due(container, node)
        await asyncio.sleep(tick)
