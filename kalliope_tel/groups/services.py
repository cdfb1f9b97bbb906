"""Groups of PBXs as services: a partner's groups, its customers' PBXs
joining and leaving them, a shared group's ring groups. Membership moves
the configuration of every member (the group's contexts list them all), so
each change here bumps all of them; ``serve`` applies it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.extensions.exceptions import InvalidValue, NotFound
from kalliope_tel.extensions.models import Extension
from kalliope_tel.groups.models import RingGroup
from kalliope_tel.oplog.services import Actor, record
from kalliope_tel.tenancy.models import Company, CompanyKind, Pbx, PbxGroup, PbxGroupKind, PbxKind

KIND_OF_MEMBER = {PbxGroupKind.SHARED: PbxKind.SHARED, PbxGroupKind.NUMBERING: PbxKind.GROUP}


def _bump(session: Session, group_id: int | None) -> None:
    if group_id is not None:
        session.execute(update(Pbx).where(Pbx.group_id == group_id).values(config_serial=Pbx.config_serial + 1))


def _partner_of(session: Session, company: Company) -> Company:
    if company.kind is CompanyKind.PARTNER:
        return company
    partner = session.get(Company, company.parent_id)
    assert partner is not None  # a customer always has its partner (check constraint)
    return partner


def group_fields(session: Session, group: PbxGroup) -> dict[str, Any]:
    members = session.scalars(select(Pbx.slug).where(Pbx.group_id == group.id).order_by(Pbx.slug)).all()
    rings = session.scalars(select(RingGroup.number).where(RingGroup.group_id == group.id)).all()
    return {"id": group.id, "name": group.name, "kind": group.kind.value, "members": list(members),
            "ring_groups": sorted(rings)}  # fmt: skip


def groups_of(session: Session, company: Company) -> list[PbxGroup]:
    partner = _partner_of(session, company)
    return list(session.scalars(select(PbxGroup).where(PbxGroup.partner_id == partner.id).order_by(PbxGroup.name)))


def group_of(session: Session, company: Company, name: str) -> PbxGroup:
    found = next((g for g in groups_of(session, company) if g.name == name), None)
    if found is None:
        raise NotFound("groups.not_found", group=name)
    return found


def create_group(session: Session, actor: Actor, company: Company, name: str, kind: str) -> PbxGroup:
    partner = _partner_of(session, company)
    name = " ".join(str(name).split())
    if not name or len(name) > 60:
        raise InvalidValue("groups.name")
    if kind not in {k.value for k in PbxGroupKind}:
        raise InvalidValue("groups.kind")
    if any(g.name == name for g in groups_of(session, partner)):
        raise InvalidValue("groups.exists", group=name)
    group = PbxGroup(partner_id=partner.id, name=name, kind=PbxGroupKind(kind))
    session.add(group)
    session.flush()
    record(session, actor, "log.group_created", "group", name, company_id=partner.id,
           after=group_fields(session, group))  # fmt: skip
    return group


def join_group(session: Session, actor: Actor, company: Company, pbx: Pbx, group: PbxGroup | None) -> Pbx:
    """Put the PBX in ``group`` (None: single again). In a numbering group
    an extension number is the group's: a PBX whose numbers another member
    has already is refused with them."""
    if group is not None and group.partner_id != _partner_of(session, company).id:
        raise NotFound("groups.not_found", group=group.name)
    if group is not None and group.kind is PbxGroupKind.NUMBERING:
        mine = set(session.scalars(select(Extension.number).where(Extension.pbx_id == pbx.id)))
        query = (
            select(Extension.number)
            .join(Pbx, Pbx.id == Extension.pbx_id)
            .where(Pbx.group_id == group.id, Pbx.id != pbx.id, Extension.number.in_(mine))
        )
        taken = sorted(set(session.scalars(query)))
        if taken:
            raise InvalidValue("groups.numbers_taken", group=group.name, numbers=", ".join(taken[:20]))
    before = pbx.group_id
    _bump(session, before)
    pbx.group_id = group.id if group is not None else None
    pbx.kind = KIND_OF_MEMBER[group.kind] if group is not None else PbxKind.SINGLE
    session.flush()
    _bump(session, pbx.group_id)
    session.refresh(pbx)
    record(session, actor, "log.group_joined" if group else "log.group_left", "pbx", pbx.slug,
           company_id=pbx.company_id, after={"group": group.name if group else ""})  # fmt: skip
    return pbx


def delete_group(session: Session, actor: Actor, company: Company, group: PbxGroup) -> None:
    """Its members become single PBXs again; its ring groups go with it."""
    before = group_fields(session, group)
    _bump(session, group.id)
    session.execute(update(Pbx).where(Pbx.group_id == group.id).values(group_id=None, kind=PbxKind.SINGLE))
    session.delete(group)
    session.flush()
    record(session, actor, "log.group_deleted", "group", group.name, company_id=group.partner_id, before=before)


def save_ring_group(
    session: Session, actor: Actor, group: PbxGroup, number: str, name: str, members: list[tuple[str, str]]
) -> RingGroup:
    """A shared group's ring group ringing ``members``, (PBX slug, extension number) of member PBXs."""
    if group.kind is not PbxGroupKind.SHARED:
        raise InvalidValue("groups.ring_needs_shared", group=group.name)
    try:
        confgate.extension(number)
    except confgate.UnsafeValue as exc:
        raise InvalidValue(exc.code, **exc.params) from None
    ids = []
    for slug, ext_number in members:
        ext = session.scalars(
            select(Extension)
            .join(Pbx, Pbx.id == Extension.pbx_id)
            .where(Pbx.group_id == group.id, Pbx.slug == slug, Extension.number == ext_number)
        ).first()
        if ext is None:
            raise InvalidValue("groups.ring_member", member=f"{slug}/{ext_number}", group=group.name)
        ids.append(ext.id)
    if not ids:
        raise InvalidValue("groups.ring_empty")
    ring = session.scalars(select(RingGroup).where(RingGroup.group_id == group.id, RingGroup.number == number)).first()
    if ring is None:
        ring = RingGroup(group_id=group.id, number=number)
        session.add(ring)
    ring.name = " ".join(str(name).split())[:80]
    ring.members = ids
    session.flush()
    after = {"number": number, "members": [f"{slug}/{ext}" for slug, ext in members]}
    label = f"{group.name}/{number}"
    record(session, actor, "log.ring_group_saved", "ring_group", label, company_id=group.partner_id, after=after)
    return ring


def delete_ring_group(session: Session, actor: Actor, group: PbxGroup, number: str) -> None:
    ring = session.scalars(select(RingGroup).where(RingGroup.group_id == group.id, RingGroup.number == number)).first()
    if ring is None:
        raise NotFound("groups.ring_not_found", number=number)
    session.delete(ring)
    session.flush()
    record(
        session, actor, "log.ring_group_deleted", "ring_group", f"{group.name}/{number}", company_id=group.partner_id
    )
