"""Simultaneous-fax limits, counted across every node.

A fax call in progress is a ``FaxSlot`` row. Admission first bumps the PBX's
fax settings row: an UPDATE takes that row's write lock on PostgreSQL and the
database write lock on SQLite, so two nodes admitting calls for one PBX take
turns and cannot both see the last free place. Slots of nodes that stopped
beating (see ``nodes``) no longer count.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from kalliope_tel.db.base import utcnow
from kalliope_tel.fax.config import Effective, get_settings
from kalliope_tel.fax.models import Direction, FaxReceived, FaxSettings, FaxSlot
from kalliope_tel.nodes import gone_after, gone_nodes
from kalliope_tel.tenancy.models import Pbx

# Longer than a fax call can be: slots older are dropped too.
SLOT_MAX_AGE = timedelta(hours=2)


def _limit_hit(limit: int, used: int) -> bool:
    return limit > 0 and used >= limit


def admit(
    session: Session, pbx: Pbx, instance: Effective, direction: Direction, node: str, call_id: str
) -> FaxSlot | str:
    """A slot for one call, or the reason it must wait (outbound) or be refused (inbound)."""
    settings = get_settings(session, pbx)
    session.execute(
        update(FaxSettings).where(FaxSettings.id == settings.id).values(admissions=FaxSettings.admissions + 1)
    )
    forget_dead_slots(session, pbx)
    rows = session.execute(
        select(FaxSlot.instance_id, FaxSlot.direction, func.count())
        .where(FaxSlot.pbx_id == pbx.id)
        .group_by(FaxSlot.instance_id, FaxSlot.direction)
    ).all()
    pbx_in = sum(n for _, d, n in rows if d is Direction.INBOUND)
    pbx_out = sum(n for _, d, n in rows if d is Direction.OUTBOUND)
    inst_in = sum(n for i, d, n in rows if i == instance.id and d is Direction.INBOUND)
    inst_out = sum(n for i, d, n in rows if i == instance.id and d is Direction.OUTBOUND)
    inbound = direction is Direction.INBOUND
    checks = [
        (settings.max_total, pbx_in + pbx_out, "the PBX's total fax limit"),
        (instance.max_total, inst_in + inst_out, f"instance {instance.name}'s total fax limit"),
        (
            settings.max_inbound if inbound else settings.max_outbound,
            pbx_in if inbound else pbx_out,
            f"the PBX's {direction.value} fax limit",
        ),
        (
            instance.max_inbound if inbound else instance.max_outbound,
            inst_in if inbound else inst_out,
            f"instance {instance.name}'s {direction.value} fax limit",
        ),
    ]
    for limit, used, what in checks:
        if _limit_hit(limit, used):
            return f"{what} ({limit}) is reached"
    slot = FaxSlot(pbx_id=pbx.id, instance_id=instance.id, direction=direction, node=node, call_id=call_id)
    session.add(slot)
    session.flush()
    return slot


def release(session: Session, slot_id: int | None) -> None:
    if slot_id:
        session.execute(delete(FaxSlot).where(FaxSlot.id == slot_id))


def _forget(session: Session, slots: list[FaxSlot], why: str) -> int:
    """Free the slots of calls whose node is gone. A reception still holding
    its slot was never recorded (the node died mid-call): it is registered
    here, once, as failed with why. Each slot is deleted on its own and the
    row written only when this transaction deleted it, so two nodes
    recovering at once cannot both register it (PostgreSQL's second DELETE
    waits for the first and finds nothing)."""
    freed = 0
    for slot in slots:
        result = session.execute(delete(FaxSlot).where(FaxSlot.id == slot.id))
        if not getattr(result, "rowcount", 0):
            continue
        freed += 1
        known = session.scalar(
            select(FaxReceived.id).where(FaxReceived.pbx_id == slot.pbx_id, FaxReceived.call_id == slot.call_id)
        )
        if slot.direction is Direction.INBOUND and known is None:
            session.add(
                FaxReceived(
                    pbx_id=slot.pbx_id,
                    instance_id=slot.instance_id,
                    call_id=slot.call_id,
                    node=slot.node,
                    started_at=slot.started_at,
                    ended_at=utcnow(),
                    ok=False,
                    reason=why.format(node=slot.node)[:300],
                )
            )
    return freed


def forget_dead_slots(session: Session, pbx: Pbx | None = None) -> int:
    """Slots of nodes that stopped beating (or too old to be a call): freed,
    their receptions registered as failed. ``pbx`` None: every PBX."""
    now = utcnow()
    # A slot counts while its node beats, or while its node has not written
    # its first heartbeat yet (a node just started), for at most SLOT_MAX_AGE.
    gone = gone_nodes(session, gone_after(), now)
    query = select(FaxSlot).where(or_(FaxSlot.started_at < now - SLOT_MAX_AGE, FaxSlot.node.in_(gone)))
    if pbx is not None:
        query = query.where(FaxSlot.pbx_id == pbx.id)
    slots = list(session.scalars(query))
    dead = [slot for slot in slots if slot.node in gone]
    old = [slot for slot in slots if slot.node not in gone]
    return _forget(session, dead, "the node {node} that took the call stopped during it") + _forget(
        session, old, "no outcome came for the call within two hours"
    )


def forget_node_slots(session: Session, node: str, before: datetime) -> int:
    """At a node's start (``before``): the calls it had before it stopped are
    over. Slots taken since are this run's own calls: the senders may claim
    a job before this runs, and deleting that slot let a second call past
    a limit of one."""
    slots = list(session.scalars(select(FaxSlot).where(FaxSlot.node == node, FaxSlot.started_at < before)))
    return _forget(session, slots, "serve stopped during the call (node {node} restarted)")


def in_progress(session: Session, pbx: Pbx) -> list[FaxSlot]:
    return list(session.scalars(select(FaxSlot).where(FaxSlot.pbx_id == pbx.id).order_by(FaxSlot.id)))
