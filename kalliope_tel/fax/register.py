"""The fax register: sent and received faxes, as a user may see them.

Without a user (the admin on the CLI) every fax of the PBX; with one, the
received faxes of instances they may receive on, and the sent faxes of
instances they may send from (KalliopePBX: 'each user assigned send/receive
permission on a FAX instance')."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.fax.exceptions import InvalidValue, NotAllowed, NotFound
from kalliope_tel.fax.models import FaxAttempt, FaxInstance, FaxJob, FaxReceived, InstanceUser, Permission
from kalliope_tel.fax.store import pdf_of
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.models import User


def _visible(session: Session, pbx: Pbx, user: User | None) -> tuple[set[int], set[int]]:
    """Instance ids the user may see (received, sent)."""
    instances = {i.id for i in session.scalars(select(FaxInstance).where(FaxInstance.pbx_id == pbx.id))}
    if user is None:
        return instances, instances
    links = session.execute(
        select(InstanceUser.instance_id, InstanceUser.permission).where(InstanceUser.user_id == user.id)
    ).all()
    received = {i for i, p in links if Permission(p).may_receive}
    sent = {i for i, p in links if Permission(p).may_send}
    return received & instances, sent & instances


def entries(
    session: Session,
    pbx: Pbx,
    *,
    user: User | None = None,
    instance: str | None = None,
    direction: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    if direction not in (None, "in", "out"):
        raise InvalidValue("direction: in or out")
    names = {i.id: i.name for i in session.scalars(select(FaxInstance).where(FaxInstance.pbx_id == pbx.id))}
    may_in, may_out = _visible(session, pbx, user)
    if instance is not None:
        wanted = {i for i, n in names.items() if n == instance}
        if not wanted:
            raise NotFound(f"no fax instance {instance!r}")
        may_in, may_out = may_in & wanted, may_out & wanted
    rows: list[dict[str, Any]] = []
    if direction in (None, "in") and may_in:
        for fax in session.scalars(
            select(FaxReceived)
            .where(FaxReceived.pbx_id == pbx.id, FaxReceived.instance_id.in_(may_in))
            .order_by(FaxReceived.id.desc())
            .limit(limit)
        ):
            rows.append(
                {
                    "id": f"in-{fax.id}",
                    "direction": "in",
                    "when": fax.started_at,
                    "instance": names[fax.instance_id],
                    "number": fax.calling,
                    "reached": fax.reached,
                    "state": "received" if fax.ok else ("partial" if fax.pages else "failed"),
                    "pages": fax.pages,
                    "attempts": 1,
                    "reason": fax.reason,
                    "bit_rate": fax.bit_rate,
                    "remote_ident": fax.remote_ident,
                    "media": fax.media.value,
                    "node": fax.node,
                    "file": fax.file_name,
                }
            )
    if direction in (None, "out") and may_out:
        jobs = session.scalars(
            select(FaxJob)
            .where(FaxJob.pbx_id == pbx.id, FaxJob.instance_id.in_(may_out))
            .order_by(FaxJob.id.desc())
            .limit(limit)
        ).all()
        senders = {u.id: u.name for u in session.scalars(select(User).where(User.pbx_id == pbx.id))}
        attempts: dict[int, list[dict[str, Any]]] = {}
        if jobs:
            for a in session.scalars(
                select(FaxAttempt).where(FaxAttempt.job_id.in_([j.id for j in jobs])).order_by(FaxAttempt.number)
            ):
                attempts.setdefault(a.job_id, []).append(
                    {
                        "number": a.number,
                        "node": a.node,
                        "started_at": a.started_at,
                        "ended_at": a.ended_at,
                        "ok": a.ok,
                        "reason": a.reason,
                        "pages": a.pages,
                        "bit_rate": a.bit_rate,
                        "media": a.media.value,
                    }
                )
        for job in jobs:
            rows.append(
                {
                    "id": f"out-{job.id}",
                    "direction": "out",
                    "when": job.created_at,
                    "instance": names[job.instance_id],
                    "number": job.number,
                    "sender": senders.get(job.user_id or 0, ""),
                    "state": job.state.value,
                    "pages": job.pages,
                    "attempts": job.attempts_made,
                    "reason": job.reason,
                    "next_attempt_at": job.next_attempt_at,
                    "attempt_log": attempts.get(job.id, []),
                    "report": bool(job.report),
                }
            )
    rows.sort(key=lambda r: r["when"], reverse=True)
    return rows[:limit]


def files_of(session: Session, pbx: Pbx, register_id: str, *, user: User | None = None) -> list[tuple[str, str]]:
    """(stored path, file name) of a fax's document, and report for a sent one."""
    side, _, number = register_id.partition("-")
    if side not in ("in", "out") or not number.isdigit():
        raise InvalidValue(f"{register_id!r}: a register id looks like in-7 or out-12")
    may_in, may_out = _visible(session, pbx, user)
    if side == "in":
        fax = session.scalars(
            select(FaxReceived).where(FaxReceived.pbx_id == pbx.id, FaxReceived.id == int(number))
        ).first()
        if fax is None or fax.instance_id not in may_in:
            raise (NotFound if fax is None or user is None else NotAllowed)(f"no fax {register_id} you may see")
        if not fax.document:
            raise NotFound(f"fax {register_id} has no pages ({fax.reason})")
        return [(fax.document, fax.file_name)]
    job = session.scalars(select(FaxJob).where(FaxJob.pbx_id == pbx.id, FaxJob.id == int(number))).first()
    if job is None or job.instance_id not in may_out:
        raise (NotFound if job is None or user is None else NotAllowed)(f"no fax {register_id} you may see")
    files = [(pdf_of(job.document), f"fax-{job.id}-document.pdf")]
    if job.report:
        files.append((job.report, f"fax-{job.id}-report.pdf"))
    return files
