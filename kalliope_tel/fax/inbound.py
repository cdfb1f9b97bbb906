"""Received faxes: admission of a call to an instance, and what follows the
call, whichever path carried it (our engine, or Asterisk's res_fax for T.38):
the pages become a PDF, the register gets a row, users with reception
permission are owed an e-mail, archival paths a copy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.fax import limits
from kalliope_tel.fax.config import effective, instance_by_id, instance_users, options_for
from kalliope_tel.fax.deliveries import owe_archive, owe_mail
from kalliope_tel.fax.exceptions import NotFound
from kalliope_tel.fax.models import Direction, FaxReceived, Media
from kalliope_tel.fax.session import FaxOptions
from kalliope_tel.tenancy.models import Pbx


@dataclass(frozen=True)
class Admission:
    admitted: bool
    reason: str = ""
    slot_id: int = 0
    instance_id: int = 0
    options: FaxOptions | None = None


def admit_inbound(session: Session, pbx: Pbx, instance_id: int, node: str, call_id: str) -> Admission:
    try:
        instance = instance_by_id(session, pbx, instance_id)
    except NotFound as exc:
        return Admission(False, str(exc))
    values = effective(session, instance)
    if not values.enabled:
        return Admission(False, f"fax instance {instance.name} is disabled", instance_id=instance.id)
    if not values.receive_enabled:
        return Admission(False, f"fax instance {instance.name} does not receive faxes", instance_id=instance.id)
    slot = limits.admit(session, pbx, values, Direction.INBOUND, node, call_id)
    if isinstance(slot, str):
        return Admission(False, slot, instance_id=instance.id)
    return Admission(True, "", slot.id, instance.id, options_for(values))


@dataclass(frozen=True)
class Reception:
    """What the call gave, from either path."""

    call_id: str
    calling: str
    reached: str
    started_at: datetime
    ended_at: datetime
    ok: bool
    reason: str
    pages: int
    bit_rate: int
    ecm: bool
    remote_ident: str
    media: Media
    node: str = ""


def file_name(pbx: Pbx, reception: Reception, fax_id: int) -> str:
    """``F<0calling>_T<reached>_YYYY-MM-DD_HH_MM_SS_<FAXID>.pdf`` (the seed's
    pattern), the time in the PBX's timezone."""
    local = reception.started_at.astimezone(ZoneInfo(pbx.timezone))
    calling = "".join(c for c in reception.calling if c.isdigit()) or "anonymous"
    reached = "".join(c for c in reception.reached if c.isdigit()) or "unknown"
    return f"F0{calling}_T{reached}_{local:%Y-%m-%d_%H_%M_%S}_{fax_id}.pdf"


def registered(session: Session, pbx_slug: str, call_id: str) -> int | None:
    """The register's id for this call, if it is in already."""
    return session.scalar(
        select(FaxReceived.id)
        .join(Pbx, Pbx.id == FaxReceived.pbx_id)
        .where(Pbx.slug == pbx_slug, FaxReceived.call_id == call_id)
        .limit(1)
    )


def record_received(
    session: Session,
    pbx: Pbx,
    instance_id: int,
    slot_id: int | None,
    reception: Reception,
    pdf: Path | None,
    data_dir: Path,
) -> FaxReceived:
    """Register a reception (``pdf``: the pages, already converted, or None)
    and owe its mails and archive copies; releases the call's slot."""
    from kalliope_tel.fax.store import inbound_dir, move_into, relative

    limits.release(session, slot_id)
    row = FaxReceived(
        pbx_id=pbx.id,
        instance_id=instance_id,
        call_id=reception.call_id,
        node=reception.node[:100],
        calling=reception.calling[:40],
        reached=reception.reached[:40],
        started_at=reception.started_at,
        ended_at=reception.ended_at,
        ok=reception.ok and reception.pages > 0,
        reason=(reception.reason or ("no pages received" if not reception.pages else ""))[:300],
        pages=reception.pages,
        bit_rate=reception.bit_rate,
        ecm=reception.ecm,
        remote_ident=reception.remote_ident[:40],
        media=reception.media,
    )
    session.add(row)
    session.flush()
    if pdf is not None and reception.pages > 0:
        row.file_name = file_name(pbx, reception, row.id)
        target = move_into(pdf, inbound_dir(data_dir, pbx.slug) / row.file_name)
        row.document = relative(data_dir, target)
        for user, permission in instance_users(session, instance_id):
            if permission.may_receive:
                owe_mail(session, pbx, Direction.INBOUND, row.id, user.email)
        owe_archive(session, pbx, Direction.INBOUND, row.id, {"document": row.document})
    session.flush()
    return row
