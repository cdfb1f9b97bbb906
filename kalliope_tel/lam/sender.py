"""The job that sends owed invitation mails (any node; each mail once)."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.lam import invitations
from kalliope_tel.mail.owed import Owed, send_owed


def _claim(session: Session, settings: Settings, node: str) -> list[Owed]:
    return list(invitations.claim(session, settings, node, limit=1))


def _finish(session: Session, invitation_id: int, node: str, error: str | None, permanent: bool) -> bool:
    return invitations.finish(session, invitation_id, node, error, permanent=permanent)


async def send_due(container: Container, node: str, limit: int = 20) -> int:
    """Send the invitations that are due; returns how many were sent."""
    return await send_owed(
        container, node, _claim, _finish, what="lam.invitation", send_seconds=invitations.SEND_SECONDS, limit=limit
    )


async def sender_loop(container: Container, node: str, tick: float) -> None:
    while True:
        await send_due(container, node)
        await asyncio.sleep(tick)
