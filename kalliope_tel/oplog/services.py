"""Writing and reading the log of operations.

Every change to companies and accounts goes through ``record`` with the
object's fields before and after; fields that hold secrets are masked
here, once, whatever the caller passed. The actor is an account's address
(web and API) or the operating-system user (the CLI, marked ``cli``).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.oplog.models import LogEntry

# Any field whose name contains one of these is shown only as set or not.
SECRET_MARKS = ("password", "secret", "pin", "token", "totp", "key", "hash")
MASK = "••••••"


@dataclass(frozen=True)
class Actor:
    name: str
    via: str  # "web", "api" or "cli"
    ip: str = ""

    @classmethod
    def cli(cls) -> Actor:
        """The operating-system user running the command (sudo's caller when run through sudo)."""
        who = os.environ.get("SUDO_USER") or getpass.getuser()
        return cls(f"{who} (os)", "cli")


def masked(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    if fields is None:
        return None
    return {
        key: (MASK if value else "") if any(mark in key.lower() for mark in SECRET_MARKS) else value
        for key, value in fields.items()
    }


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, as (before, after); both empty when nothing did."""
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record(
    session: Session,
    actor: Actor,
    operation: str,
    object_kind: str,
    label: str,
    *,
    company_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> LogEntry:
    entry = LogEntry(
        company_id=company_id,
        operation=operation[:60],
        object_kind=object_kind[:30],
        object_label=label[:200],
        actor=actor.name[:254],
        via=actor.via[:10],
        ip=actor.ip[:64],
        before=masked(before),
        after=masked(after),
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session,
    company_ids: set[int],
    *,
    limit: int = 500,
    before_id: int | None = None,
    kinds: tuple[str, ...] = (),
) -> list[LogEntry]:
    """The newest entries of these companies' logs (``before_id``: the page
    after; ``kinds``: only these objects, e.g. the Manager's PBXs and extensions)."""
    query = select(LogEntry).where(LogEntry.company_id.in_(company_ids))
    if kinds:
        query = query.where(LogEntry.object_kind.in_(kinds))
    if before_id is not None:
        query = query.where(LogEntry.id < before_id)
    return list(session.scalars(query.order_by(LogEntry.id.desc()).limit(limit)))


def as_dict(entry: LogEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": _iso(entry.at),
        "company_id": entry.company_id,
        "operation": entry.operation,
        "object_kind": entry.object_kind,
        "object": entry.object_label,
        "actor": entry.actor,
        "via": entry.via,
        "ip": entry.ip,
        "before": entry.before,
        "after": entry.after,
    }


def _iso(at: datetime) -> str:
    return at.isoformat()
