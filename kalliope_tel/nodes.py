"""Each ``serve`` node's health, in the database for any node or tool to read.

A node writes its row every ``HEARTBEAT_SECONDS``: supervised tasks and their
restarts, event-loop lag, live fax sessions, calls in progress. ``doctor``
reads every row: a node whose heartbeat is older than ``STALE_SECONDS`` and
was not stopped cleanly is reported as gone.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.tenancy.models import ServeNode

log = structlog.get_logger(__name__)
HEARTBEAT_SECONDS = 5.0
# A node that has not written its heartbeat for this long is gone: whatever
# it was doing (a fax call, a claimed job, channels in its Stasis app) is over
# and any live node takes it up. The ``node_gone_seconds`` setting, the same
# on every node of an installation; serve sets it at start.
NODE_GONE_AFTER = timedelta(seconds=60)
_gone_after = NODE_GONE_AFTER


def gone_after() -> timedelta:
    return _gone_after


def set_gone_after(seconds: float) -> None:
    global _gone_after
    _gone_after = timedelta(seconds=seconds)


STALE_SECONDS = 20.0
# A node silent for this long is forgotten: nodes named by host and pid get a
# new name at every start, and one that crashed must not fail doctor forever
# (its calls were recovered by the watchdog long before).
FORGET_SECONDS = 3600.0


def write_status(sessions: sessionmaker[Session], node: str, status: dict[str, Any], *, stopped: bool = False) -> None:
    with transaction(sessions) as session:
        row = session.get(ServeNode, node)
        now = utcnow()
        if row is None:
            row = ServeNode(node=node, host=socket.gethostname()[:100], pid=os.getpid(), started_at=now)
            session.add(row)
        row.pid, row.heartbeat_at, row.status = os.getpid(), now, status
        row.stopped_at = now if stopped else None


async def heartbeat_loop(sessions: sessionmaker[Session], node: str, status: Callable[[], dict[str, Any]]) -> None:
    while True:
        try:
            await asyncio.to_thread(write_status, sessions, node, status())
        except SQLAlchemyError as exc:
            log.warning("node.heartbeat_failed", error=str(exc).splitlines()[0])
        await asyncio.sleep(HEARTBEAT_SECONDS)


def gone_nodes(session: Session, silent_for: timedelta, now: datetime | None = None) -> set[str]:
    """Nodes that stopped, or whose heartbeat is older than ``silent_for``:
    whatever they were doing (a fax call, a claimed job) is over."""
    now = now or utcnow()
    rows = session.execute(select(ServeNode.node, ServeNode.heartbeat_at, ServeNode.stopped_at)).all()
    return {node for node, beat, stopped in rows if stopped is not None or beat < now - silent_for}


def read_nodes(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or utcnow()
    out = []
    forgotten = now - timedelta(seconds=FORGET_SECONDS)
    for row in session.scalars(select(ServeNode).where(ServeNode.heartbeat_at >= forgotten).order_by(ServeNode.node)):
        alive = row.stopped_at is None and now - row.heartbeat_at < timedelta(seconds=STALE_SECONDS)
        out.append(
            {
                "node": row.node,
                "host": row.host,
                "pid": row.pid,
                "alive": alive,
                "stopped_cleanly": row.stopped_at is not None,
                "heartbeat_age_s": round((now - row.heartbeat_at).total_seconds(), 1),
                **row.status,
            }
        )
    return out
