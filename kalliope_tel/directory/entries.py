"""What a PBX publishes, computed from the store alone (no LDAP here).

An extension is published by its own mode (none; number and name; or with
its user's e-mail and department). A room, by the hotel's rules
(``hotel.directory``, lent through ``Feature.provides``): its room name,
its guest's only where the hotel allows it. Suspended extensions and PBXs
that do not serve publish nothing. ``Entry`` is what both the LDAP
directory and the XML phonebooks are made from, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.accounts.models import CompanyMember
from kalliope_tel.extensions.models import DirectoryMode, Extension, ExtensionStatus
from kalliope_tel.tenancy.companies import is_serving
from kalliope_tel.tenancy.models import Pbx, PbxGroup, PbxGroupKind
from kalliope_tel.users.models import User


@dataclass(frozen=True, order=True)
class Entry:
    number: str
    name: str
    ldap: bool  # published in LDAP
    phonebook: bool  # in the XML phonebooks
    mail: str = ""
    department: str = ""
    organization: str = ""
    unit: str = ""

    @property
    def surname(self) -> str:
        """inetOrgPerson needs a surname: the name's last word."""
        return self.name.split()[-1] if self.name.split() else self.number


RoomsOf = Callable[[Session, Pbx], dict[str, dict[str, Any]]]


def shared_with(session: Session, pbx: Pbx) -> list[Pbx]:
    """The other PBXs whose entries this PBX's phones see: the members of
    its numbering group (one numbering plan: their numbers dial directly)."""
    if pbx.group_id is None:
        return []
    group = session.get(PbxGroup, pbx.group_id)
    if group is None or group.kind is not PbxGroupKind.NUMBERING:
        return []
    query = select(Pbx).where(Pbx.group_id == group.id, Pbx.id != pbx.id).order_by(Pbx.slug)
    return list(session.scalars(query))


def directory_of(session: Session, pbx: Pbx, rooms_of: RoomsOf | None) -> list[Entry]:
    """What the PBX's phones find: its own entries, and its numbering
    group's (named with their PBX as organisation), sorted by number."""
    if not is_serving(session, pbx.id):  # nothing, not even its group's
        return []
    own = entries(session, pbx, rooms_of)
    others = [
        replace(entry, organization=entry.organization or member.name)
        for member in shared_with(session, pbx)
        for entry in entries(session, member, rooms_of)
    ]
    return sorted(own + others)


def entries(session: Session, pbx: Pbx, rooms_of: RoomsOf | None) -> list[Entry]:
    """The PBX's own entries, sorted by number; ``rooms_of``: the hotel's
    ``directory_rooms`` when the hotel runs, else None."""
    if not is_serving(session, pbx.id):
        return []
    rooms = rooms_of(session, pbx) if rooms_of is not None else {}
    out = []
    query = select(Extension).where(Extension.pbx_id == pbx.id, Extension.status == ExtensionStatus.ACTIVE)
    for ext in session.scalars(query.order_by(Extension.number)):
        room = rooms.get(ext.number)
        if room is not None:
            name = f"{room['name']} {room['guest']}".strip() if room["guest"] else room["name"]
            out.append(Entry(ext.number, name, room["published"], room["phonebook"] and room["published"],
                             organization=room["organization"], unit=room["unit"]))  # fmt: skip
            continue
        mode = ext.directory_mode
        user = session.get(User, ext.user_id) if ext.user_id else None
        account = user.account if user is not None else None
        person = f"{account.first_name} {account.last_name}".strip() if account is not None else ""
        full = mode is DirectoryMode.FULL and account is not None
        department = ""
        if full and account is not None:
            seat = session.scalars(
                select(CompanyMember).where(
                    CompanyMember.account_id == account.id, CompanyMember.company_id == pbx.company_id
                )
            ).first()
            department = seat.department if seat is not None else ""
        out.append(
            Entry(
                ext.number,
                ext.name or person or ext.number,
                mode is not DirectoryMode.NONE,
                ext.show_in_phonebook and mode is not DirectoryMode.NONE,
                mail=account.email if full and account is not None else "",
                department=department,
            )
        )
    return out
