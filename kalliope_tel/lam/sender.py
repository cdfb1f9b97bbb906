"""The job that sends owed invitation mails (any node; each mail once)."""

from __future__ import annotations

import asyncio

import structlog

from kalliope_tel.container import Container
from kalliope_tel.db.engine import transaction
from kalliope_tel.lam import invitations
from kalliope_tel.mail.smtp import MailNotSent, send

log = structlog.get_logger(__name__)


async def send_due(container: Container, node: str) -> int:
    """Claim the mails that are due, send them, record each outcome; returns how many were sent."""
    settings = container.settings

    def claim() -> list[invitations.Claimed]:
        with transaction(container.sessions, writes=True) as session:
            return invitations.claim(session, settings, node)

    def finish(invitation_id: int, error: str | None, permanent: bool) -> None:
        with transaction(container.sessions) as session:
            invitations.finish(session, invitation_id, error, permanent=permanent)

    sent = 0
    for item in await asyncio.to_thread(claim):
        try:
            await send(settings, item.message)
        except MailNotSent as exc:
            log.warning("lam.invitation_not_sent", invitation=item.id, reason=str(exc), permanent=exc.permanent)
            await asyncio.to_thread(finish, item.id, str(exc), exc.permanent)
            continue
        await asyncio.to_thread(finish, item.id, None, False)
        sent += 1
    return sent


async def sender_loop(container: Container, node: str, tick: float) -> None:
    while True:
        await send_due(container, node)
        await asyncio.sleep(tick)
