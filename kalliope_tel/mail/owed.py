"""Sending the mails a store owes (LAM invitations, password reset links):
one claimed at a time, its send cut at ``send_seconds`` and its outcome
recorded before the next is claimed, so a node that dies mid-send leaves
one mail to the lease and nothing else. What is owed, and how an outcome is
recorded, is the owner's (``claim`` and ``finish`` over ``db.leases``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.message import EmailMessage
from typing import Protocol

import structlog
from sqlalchemy.orm import Session

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db.engine import transaction
from kalliope_tel.mail.smtp import MailNotSent, send

log = structlog.get_logger(__name__)


class Owed(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def message(self) -> EmailMessage: ...


Claim = Callable[[Session, Settings, str], list[Owed]]
Finish = Callable[[Session, int, str, str | None, bool], bool]


async def send_owed(
    container: Container, node: str, claim: Claim, finish: Finish, *, what: str, send_seconds: float, limit: int = 20
) -> int:
    """Send up to ``limit`` due mails; returns how many were sent. ``what``
    names them in the logs (``<what>_not_sent``, ``<what>_claim_lost``)."""
    settings = container.settings

    def claim_one() -> list[Owed]:
        with transaction(container.sessions) as session:
            return claim(session, settings, node)

    def record(item_id: int, error: str | None, permanent: bool) -> bool:
        with transaction(container.sessions) as session:
            return finish(session, item_id, node, error, permanent)

    sent = 0
    for _ in range(limit):
        claimed = await asyncio.to_thread(claim_one)
        if not claimed:
            break
        item = claimed[0]
        error, permanent = None, False
        try:
            await asyncio.wait_for(send(settings, item.message), send_seconds)
        except MailNotSent as exc:
            error, permanent = str(exc), exc.permanent
        except TimeoutError:
            error = f"the mail server did not finish within {send_seconds:.0f} s"
        if error is not None:
            log.warning(f"{what}_not_sent", id=item.id, reason=error, permanent=permanent)
        if not await asyncio.to_thread(record, item.id, error, permanent):
            log.warning(f"{what}_claim_lost", id=item.id)
        elif error is None:
            sent += 1
    return sent
