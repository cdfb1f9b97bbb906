"""Groups of PBXs in the generated configuration.

One file per group, ``kalliope/extensions_group-<id>.conf``, which every
member renders alike (``Feature.shared_files``):

* ``ktx-group-<id>``, included by each member's internal context after the
  member's own extensions (what a PBX has itself always answers first): a
  numbering group lists every member's extension numbers; a shared group its
  ring groups and a hint per member extension, ``<slug>_<number>``, for BLF
  keys across the group;
* ``ktx-group-<id>-reach``: a member's extension entered as that member
  (``KALLIOPE_PBX`` set to it), so its rooms, classes and hints apply.

A PBX outside the group includes none of it: its calls to a member's
number are not routed there, and it sees no member's state. Suspended
members and suspended extensions are left out.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate as gate
from kalliope_tel.dialplan.generator import shared_header
from kalliope_tel.dialplan.naming import GENERATED_DIR, context
from kalliope_tel.extensions.accounts import sip_login
from kalliope_tel.extensions.models import Extension, ExtensionStatus
from kalliope_tel.features.base import DialplanFragment
from kalliope_tel.groups.models import RingGroup
from kalliope_tel.tenancy.companies import serving_pbx_ids
from kalliope_tel.tenancy.models import Pbx, PbxGroup, PbxGroupKind


def group_context(group_id: int, *parts: str) -> str:
    return gate.section("ktx", "group", str(int(group_id)), *parts)


def group_file(group_id: int) -> str:
    return f"{GENERATED_DIR}/extensions_group-{int(group_id)}.conf"


def member_key(pbx: Pbx, number: str) -> str:
    """A member's extension inside the group's contexts (and its hint's name)."""
    return f"{gate.slug(pbx.slug)}_{gate.extension(number)}"


def render_group(session: Session, group: PbxGroup) -> str:
    serving = set(session.scalars(serving_pbx_ids()))
    members = [
        p for p in session.scalars(select(Pbx).where(Pbx.group_id == group.id).order_by(Pbx.slug)) if p.id in serving
    ]
    extensions: list[tuple[Pbx, Extension]] = [
        (pbx, ext)
        for pbx in members
        for ext in session.scalars(
            select(Extension)
            .where(Extension.pbx_id == pbx.id, Extension.status == ExtensionStatus.ACTIVE)
            .order_by(Extension.number)
        )
    ]
    kind = "numbering plan" if group.kind is PbxGroupKind.NUMBERING else "shared ring groups and BLF"
    main, reach = group_context(group.id), group_context(group.id, "reach")
    out = [shared_header(f"group {group.id} ({gate.comment(group.name)}, {kind})"), "", f"[{main}]"]
    if group.kind is PbxGroupKind.NUMBERING:
        out += [
            f"exten => {gate.extension(ext.number)},1,Goto({reach},{member_key(pbx, ext.number)},1)"
            for pbx, ext in extensions
        ]
    else:
        by_id = {ext.id: (pbx, ext) for pbx, ext in extensions}
        rings = session.scalars(select(RingGroup).where(RingGroup.group_id == group.id).order_by(RingGroup.number))
        for ring in rings:
            targets = [by_id[i] for i in ring.members if i in by_id]
            out.append(f"; Ring group {gate.comment(ring.name)}")
            if not targets:
                out.append(f"exten => {gate.extension(ring.number)},1,Congestion(5)")
                continue
            devices = "&".join(f"Local/{member_key(pbx, ext.number)}@{reach}" for pbx, ext in targets)
            out += [
                f"exten => {gate.extension(ring.number)},1,Dial({devices},{int(ring.ring_seconds)})",
                " same => n,Hangup()",
            ]
        for pbx, ext in extensions:
            logins = [gate.sip_user(sip_login(pbx, a.username)) for a in sorted(ext.accounts, key=lambda a: a.username)]
            if logins:
                out.append(f"exten => {member_key(pbx, ext.number)},hint,{'&'.join(f'PJSIP/{x}' for x in logins)}")
    out += ["", f"[{reach}]"]
    for pbx, ext in extensions:
        out += [
            f"exten => {member_key(pbx, ext.number)},1,Set(__KALLIOPE_PBX={gate.slug(pbx.slug)})",
            f" same => n,Goto({context(pbx.slug, 'internal')},{gate.extension(ext.number)},1)",
        ]
    return "\n".join(out) + "\n"


def shared_files(session: Session, pbx: Pbx) -> dict[str, str]:
    if pbx.group_id is None:
        return {}
    group = session.get(PbxGroup, pbx.group_id)
    return {} if group is None else {group_file(group.id): render_group(session, group)}


def shared_file_names(session: Session) -> set[str]:
    query = select(Pbx.group_id).where(Pbx.group_id.is_not(None)).distinct()
    return {group_file(i) for i in session.scalars(query) if i is not None}


def dialplan_fragment(session: Session, pbx: Pbx, device_template: str) -> DialplanFragment:
    if pbx.group_id is None:
        return DialplanFragment()
    return DialplanFragment(late_includes=[group_context(pbx.group_id)])
