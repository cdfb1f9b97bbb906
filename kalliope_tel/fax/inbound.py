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


def registered(session: Session, pbx_slug: str, call_id: str, *, with_pages: bool = False) -> int | None:
    """The register's id for this call, if it is in already (``with_pages``:
    only a row that holds the call's pages counts)."""
    query = (
        select(FaxReceived.id)
        .join(Pbx, Pbx.id == FaxReceived.pbx_id)
        .where(Pbx.slug == pbx_slug, FaxReceived.call_id == call_id)
    )
    if with_pages:
        query = query.where(FaxReceived.document != "")
    return session.scalar(query.limit(1))


def pageless_row(session: Session, pbx_id: int, call_id: str) -> FaxReceived | None:
    """The call's register row when it holds no pages (recorded as lost)."""
    return session.scalars(
        select(FaxReceived).where(
            FaxReceived.pbx_id == pbx_id, FaxReceived.call_id == call_id, FaxReceived.document == ""
        )
    ).first()


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
    # The call is in the register already without pages (a node found the
    # slot of the node that took it and recorded it as lost, before this
    # reception's note was registered): the reception takes that row's place.
    row = pageless_row(session, pbx.id, reception.call_id) or FaxReceived(
        pbx_id=pbx.id, instance_id=instance_id, call_id=reception.call_id
    )
    row.node = reception.node[:100]
    row.calling, row.reached = reception.calling[:40], reception.reached[:40]
    row.started_at, row.ended_at = reception.started_at, reception.ended_at
    row.ok = reception.ok and reception.pages > 0
    row.reason = (reception.reason or ("no pages received" if not reception.pages else ""))[:300]
    row.pages, row.bit_rate, row.ecm = reception.pages, reception.bit_rate, reception.ecm
    row.remote_ident, row.media = reception.remote_ident[:40], reception.media
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
