"""How far each PBX's configuration has reached its Asterisk, in the store:
written by the ``serve`` node that applied it (``autoapply``), read by the
administration pages and Omnia (a PBX or extension is Pending until then)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.db import leases
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import insert_ignoring
from kalliope_tel.tenancy.models import ConfigState, Pbx

LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Claimed:
    """PBXs this node now applies: {PBX id: serial}, and those another node
    left half done (its lease ran out: files maybe written, not reloaded)."""

    serials: dict[int, int]
    orphaned: frozenset[int]


def claim(session: Session, wanted: dict[int, int], node: str, now: datetime | None = None) -> Claimed:
    """Take the apply lease of the ``wanted`` PBXs nobody else holds (rows
    another node is claiming this moment are skipped: SKIP LOCKED)."""
    now = now or utcnow()
    if not wanted:
        return Claimed({}, frozenset())
    rows = [{"pbx_id": pbx_id, "applied_serial": 0, "error": ""} for pbx_id in sorted(wanted)]
    # Existing PBXs only (one removed meanwhile would break the key).
    present = set(session.scalars(select(Pbx.id).where(Pbx.id.in_(sorted(wanted)))))
    rows = [r for r in rows if r["pbx_id"] in present]
    if rows:
        session.execute(insert_ignoring(session, ConfigState, ["pbx_id"]).values(rows))
    query = select(ConfigState).where(ConfigState.pbx_id.in_(sorted(present)), leases.free(ConfigState, now))
    taken: dict[int, int] = {}
    orphaned = set()
    for state in session.scalars(query.with_for_update(skip_locked=True)):
        if state.claimed_by not in (None, node) and state.applied_serial < wanted[state.pbx_id]:
            orphaned.add(state.pbx_id)
        leases.take(state, node, now + LEASE)
        taken[state.pbx_id] = wanted[state.pbx_id]
    session.flush()
    return Claimed(taken, frozenset(orphaned))


def record_applied(session: Session, serials: dict[int, int]) -> None:
    """The PBXs' configuration up to these serials is written and reloaded."""
    now = utcnow()
    for pbx_id, serial in serials.items():
        if session.get(Pbx, pbx_id) is None:
            continue  # removed meanwhile
        state = session.get(ConfigState, pbx_id) or ConfigState(pbx_id=pbx_id)
        # Another node on the same Asterisk may have recorded a later serial.
        state.applied_serial = max(state.applied_serial or 0, serial)
        state.applied_at, state.error, state.error_at = now, "", None
        leases.release(state)
        session.add(state)


def record_error(session: Session, pbx_ids: list[int], error: str) -> None:
    for pbx_id in pbx_ids:
        if session.get(Pbx, pbx_id) is None:
            continue
        state = session.get(ConfigState, pbx_id) or ConfigState(pbx_id=pbx_id, applied_serial=0)
        state.error, state.error_at = error[:300], utcnow()
        leases.release(state)  # retried next round, by this node or another
        session.add(state)


def state_of(session: Session, pbx: Pbx) -> dict[str, Any]:
    """For the administration pages: applied, applying (a change not yet
    through), or failing (with the reason)."""
    state = session.get(ConfigState, pbx.id)
    applied = state.applied_serial if state else 0
    error = state.error if state else ""
    # From the row, not the object: the serial goes up by a bulk UPDATE in
    # the flush (config_serial), which an object loaded earlier does not see.
    serial = session.scalar(select(Pbx.config_serial).where(Pbx.id == pbx.id)) or 0
    word = "applied" if applied >= serial else ("failing" if error else "applying")
    return {
        "state": word,
        "serial": serial,
        "applied_serial": applied,
        "applied_at": state.applied_at.isoformat(timespec="seconds") if state and state.applied_at else None,
        "error": error if word == "failing" else "",
    }
