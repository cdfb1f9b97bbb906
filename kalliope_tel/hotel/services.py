"""Hotel configuration: settings, outbound classes, template defaults,
templates, rooms and their SIP accounts.

Every function takes the session and the PBX it acts for; callers own the
transaction (the CLI and AGI adapters commit once per command or call).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.catalogue import Term
from kalliope_tel.extensions import services as extensions
from kalliope_tel.extensions.accounts import (
    bounded_text,
    class_names,
    create_account,
    create_class,
    gated,
    get_account,
    get_class,
    list_classes,
)
from kalliope_tel.hotel.exceptions import InUse, InvalidValue, NotFound
from kalliope_tel.hotel.models import (
    TEMPLATE_FIELDS,
    ClassKind,
    Failover,
    HotelSettings,
    LdapMode,
    Origin,
    Outcome,
    Room,
    RoomTemplate,
    Stay,
    TemplateDefaults,
)
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import per_pbx_row

FAILOVER_KEYS = [f"{o.value}.{g.value}" for o in Outcome for g in Origin]
EMERGENCY_NUMBERS = ["112", "113", "115", "118"]


# Template values when nothing else is configured.
BUILTIN_DEFAULTS: dict[str, Any] = {
    "show_in_phonebook": True,
    "ldap_mode": LdapMode.NONE,
    "organization": "",
    "organizational_unit": "",
    "calls_limit": 2,
    "busy_level": 1,
    "ring_timeout": 25,
}


# ------------------------------------------------------------------ settings
def get_settings(session: Session, pbx: Pbx) -> HotelSettings:
    return per_pbx_row(session, HotelSettings, pbx)


def settings_view(session: Session, pbx: Pbx) -> dict[str, Any]:
    """The hotel's global settings as the CLI and the web show them."""
    s = get_settings(session, pbx)
    names = {c.id: c.name for c in list_classes(session, pbx)}
    return {
        "cleaning_code": s.cleaning_enabled,
        "cleaning_prefix": s.cleaning_prefix,
        "block_room_to_room": s.block_room_to_room,
        "nightly_dirty_at": s.nightly_dirty_at.strftime("%H:%M"),
        "checkout_dirty": s.checkout_dirty,
        "directory_guest_names": s.directory_guest_names,
        "non_room_class": names.get(s.non_room_class_id or -1, ""),
    }


def update_settings(session: Session, pbx: Pbx, **values: Any) -> HotelSettings:
    settings = get_settings(session, pbx)
    if "cleaning_prefix" in values and values["cleaning_prefix"] is not None:
        prefix = values["cleaning_prefix"]
        if not re.fullmatch(r"[*#]?[0-9]{1,6}", prefix):
            raise InvalidValue("hotel.prefix_form", prefix=repr(prefix), setting="cleaning_prefix")
        if session.scalars(select(Room).where(Room.pbx_id == pbx.id, Room.extension.startswith(prefix))).first():
            raise InvalidValue("hotel.prefix_overlaps", prefix=repr(prefix), setting="cleaning_prefix")
    if "non_room_class" in values:
        name = values.pop("non_room_class")
        values["non_room_class_id"] = get_class(session, pbx, name).id if name else None
    for key, value in values.items():
        if value is not None:
            setattr(settings, key, value)
    session.flush()
    return settings


def delete_class(session: Session, pbx: Pbx, name: str) -> None:
    cls = get_class(session, pbx, name)
    for model in (RoomTemplate, Room, TemplateDefaults):
        used = session.scalar(
            select(func.count())
            .select_from(model)
            .where((model.standard_class_id == cls.id) | (model.restricted_class_id == cls.id))
        )
        if used:
            raise InUse("hotel.class_in_use", name=repr(name), count=used, what=Term("what." + model.__tablename__))
    session.delete(cls)
    session.flush()


def ensure_default_classes(session: Session, pbx: Pbx, trunk_context: str = "kalliope-trunk") -> None:
    """Create "restricted" (emergency numbers only) and "standard" (everything)
    when the PBX has no classes yet, and point the template defaults at them."""
    if list_classes(session, pbx):
        return
    restricted = create_class(
        session,
        pbx,
        "restricted",
        EMERGENCY_NUMBERS,
        trunk_context,
        "internal calls and emergency numbers only",
    )
    standard = create_class(session, pbx, "standard", ["_X.", "_+X."], trunk_context, "every number")
    defaults = get_template_defaults(session, pbx)
    defaults.standard_class_id = defaults.standard_class_id or standard.id
    defaults.restricted_class_id = defaults.restricted_class_id or restricted.id
    get_settings(session, pbx).non_room_class_id = standard.id
    session.flush()


# ------------------------------------------------------------------ template defaults
def get_template_defaults(session: Session, pbx: Pbx) -> TemplateDefaults:
    found = session.scalars(select(TemplateDefaults).where(TemplateDefaults.pbx_id == pbx.id)).first()
    if found is None:
        found = TemplateDefaults(pbx_id=pbx.id, failovers={}, **BUILTIN_DEFAULTS)
        session.add(found)
        session.flush()
    return found


def _check_values(session: Session, pbx: Pbx, values: dict[str, Any]) -> dict[str, Any]:
    """Validate template values given by name (classes by name) and return model values."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key in ("standard_class", "restricted_class"):
            out[f"{key}_id"] = get_class(session, pbx, value).id
        elif key == "ldap_mode":
            try:
                out[key] = LdapMode(value)
            except ValueError:
                raise InvalidValue("hotel.ldap_mode", value=repr(value), expected=[m.value for m in LdapMode]) from None
        elif key in ("calls_limit", "busy_level", "ring_timeout"):
            if not isinstance(value, int) or value < 0 or value > 3600:
                raise InvalidValue("hotel.whole_number", setting=key, value=repr(value))
            out[key] = value
        elif key in ("organization", "organizational_unit"):
            out[key] = str(value).strip()
        elif key == "show_in_phonebook":
            out[key] = bool(value)
        elif key in TEMPLATE_FIELDS:
            out[key] = value
        else:
            raise InvalidValue("hotel.unknown_setting", setting=key)
    if out.get("ring_timeout") == 0:
        raise InvalidValue("hotel.ring_timeout", setting="ring_timeout")
    return out


def check_failovers(failovers: dict[str, str]) -> dict[str, str]:
    clean: dict[str, str] = {}
    for key, dest in failovers.items():
        if key not in FAILOVER_KEYS:
            raise InvalidValue("hotel.failover_key", key=repr(key), expected=list(FAILOVER_KEYS))
        if dest and dest != "hangup" and not re.fullmatch(r"[0-9*#]{1,20}", dest):
            raise InvalidValue("hotel.failover_destination", key=key, destination=repr(dest))
        if dest:
            clean[key] = dest
    return clean


def update_template_defaults(
    session: Session, pbx: Pbx, failovers: dict[str, str] | None = None, **values: Any
) -> TemplateDefaults:
    defaults = get_template_defaults(session, pbx)
    for key, value in _check_values(session, pbx, values).items():
        setattr(defaults, key, value)
    if failovers is not None:
        defaults.failovers = {**defaults.failovers, **check_failovers(failovers)}
    session.flush()
    return defaults


# ------------------------------------------------------------------ templates
def _set_failovers(owner: RoomTemplate | Room, failovers: dict[str, str], *, replace: bool) -> None:
    current = {f"{f.outcome.value}.{f.origin.value}": f for f in owner.failovers}
    if replace:
        owner.failovers.clear()
        current = {}
    for key, dest in failovers.items():
        outcome, origin = key.split(".")
        if key in current:
            current[key].destination = dest
        else:
            owner.failovers.append(Failover(outcome=Outcome(outcome), origin=Origin(origin), destination=dest))


def replace_failovers(owner: RoomTemplate | Room, failovers: dict[str, str]) -> None:
    """Set exactly these failovers (checked) on a template or a room."""
    _set_failovers(owner, check_failovers(failovers), replace=True)


def create_template(
    session: Session, pbx: Pbx, name: str, failovers: dict[str, str] | None = None, **values: Any
) -> RoomTemplate:
    name = bounded_text(name, 60, "template name")
    if not name:
        raise InvalidValue("hotel.template_name")
    if session.scalars(select(RoomTemplate).where(RoomTemplate.pbx_id == pbx.id, RoomTemplate.name == name)).first():
        raise InvalidValue("hotel.template_exists", name=repr(name))
    defaults = get_template_defaults(session, pbx)
    seeded = {f: getattr(defaults, f) for f in TEMPLATE_FIELDS}
    seeded.update(_check_values(session, pbx, values))
    template = RoomTemplate(pbx_id=pbx.id, name=name, **seeded)
    _set_failovers(template, {**defaults.failovers, **check_failovers(failovers or {})}, replace=True)
    session.add(template)
    session.flush()
    return template


def get_template(session: Session, pbx: Pbx, name: str) -> RoomTemplate:
    found = session.scalars(
        select(RoomTemplate).where(RoomTemplate.pbx_id == pbx.id, RoomTemplate.name == name)
    ).first()
    if found is None:
        raise NotFound("hotel.no_template", name=repr(name))
    return found


def list_templates(session: Session, pbx: Pbx) -> list[RoomTemplate]:
    return list(session.scalars(select(RoomTemplate).where(RoomTemplate.pbx_id == pbx.id).order_by(RoomTemplate.name)))


def update_template(
    session: Session, pbx: Pbx, name: str, failovers: dict[str, str] | None = None, **values: Any
) -> RoomTemplate:
    template = get_template(session, pbx, name)
    for key, value in _check_values(session, pbx, values).items():
        setattr(template, key, value)
    if failovers:
        _set_failovers(template, check_failovers(failovers), replace=False)
    session.flush()
    return template


def delete_template(session: Session, pbx: Pbx, name: str) -> None:
    template = get_template(session, pbx, name)
    used = session.scalar(select(func.count()).select_from(Room).where(Room.template_id == template.id))
    if used:
        raise InUse("hotel.template_in_use", name=repr(name), count=used)
    session.delete(template)
    session.flush()


# ------------------------------------------------------------------ rooms
@dataclass(frozen=True)
class EffectiveRoom:
    """A room with every template value resolved (override, else template)."""

    id: int
    extension: str
    name: str
    template: str
    show_in_phonebook: bool
    ldap_mode: str
    building: str
    floor: str
    standard_class: str
    restricted_class: str
    calls_limit: int
    busy_level: int
    ring_timeout: int
    failovers: dict[str, str]
    accounts: list[str]
    clean: bool
    occupied: bool
    stay: dict[str, Any] | None = field(default=None)


def effective(room: Room, class_names: dict[int, str], stay: Stay | None = None) -> EffectiveRoom:
    def pick(attr: str) -> Any:
        own = getattr(room, attr)
        return own if own is not None else getattr(room.template, attr)

    failovers = {f"{f.outcome.value}.{f.origin.value}": f.destination for f in room.template.failovers}
    failovers.update({f"{f.outcome.value}.{f.origin.value}": f.destination for f in room.failovers})
    std, res = pick("standard_class_id"), pick("restricted_class_id")
    ldap = pick("ldap_mode")
    return EffectiveRoom(
        id=room.id,
        extension=room.extension,
        name=room.name,
        template=room.template.name,
        show_in_phonebook=bool(pick("show_in_phonebook")),
        ldap_mode=ldap.value if ldap else LdapMode.NONE.value,
        building=pick("organization") or "",
        floor=pick("organizational_unit") or "",
        standard_class=class_names.get(std, "") if std else "",
        restricted_class=class_names.get(res, "") if res else "",
        calls_limit=int(pick("calls_limit") or 0),
        busy_level=int(pick("busy_level") or 0),
        ring_timeout=int(pick("ring_timeout") or BUILTIN_DEFAULTS["ring_timeout"]),
        failovers=dict(sorted(failovers.items())),
        accounts=sorted(a.username for a in room.accounts),
        clean=room.clean,
        occupied=stay is not None,
        stay=None
        if stay is None
        else {
            "owner": stay.owner,
            "guests": list(stay.guests),
            "notes": stay.notes,
            "outbound": stay.outbound.value,
            "checkin_at": stay.checkin_at.isoformat(),
        },
    )


def find_room(session: Session, pbx: Pbx, extension: str) -> Room | None:
    """The room with this extension, or None (a caller that is not a room)."""
    if not extension:
        return None
    return session.scalars(select(Room).where(Room.pbx_id == pbx.id, Room.extension == extension)).first()


def get_room(session: Session, pbx: Pbx, extension: str) -> Room:
    room = find_room(session, pbx, extension)
    if room is None:
        raise NotFound("hotel.no_room", room=extension)
    return room


@dataclass
class CreatedRoom:
    room: Room
    new_credentials: dict[str, str]  # username -> password, shown once


def create_room(
    session: Session,
    pbx: Pbx,
    extension: str,
    name: str,
    template: str,
    *,
    attach: list[str] | None = None,
    new_accounts: int = 0,
    failovers: dict[str, str] | None = None,
    **overrides: Any,
) -> CreatedRoom:
    """A room: the hotel's data on an extension, made here when the number
    is not one yet (an existing extension becomes a room)."""
    gated(confgate.extension, extension, "extension")
    if find_room(session, pbx, extension) is not None:
        raise InvalidValue("hotel.room_exists", room=extension, setting="extension")
    prefix = get_settings(session, pbx).cleaning_prefix
    if prefix and extension.startswith(prefix):
        raise InvalidValue("hotel.room_prefix", room=extension, prefix=prefix, setting="extension")
    room_name = bounded_text(name, 80, "room name") or extension
    ext = extensions.find_extension(session, pbx, extension)
    if ext is None:
        ext = extensions.create_extension(session, pbx, extension, name=room_name, accounts=0).extension
    room = Room(
        pbx_id=pbx.id,
        extension=extension,
        name=room_name,
        template_id=get_template(session, pbx, template).id,
        **_check_values(session, pbx, overrides),
    )
    session.add(room)
    session.flush()
    _set_failovers(room, check_failovers(failovers or {}), replace=True)
    for username in attach or []:
        account = get_account(session, pbx, username)
        if account.extension_id not in (None, ext.id):
            raise InUse("hotel.account_taken", account=repr(username))
        account.extension_id = ext.id
    credentials: dict[str, str] = {}
    taken = len(ext.accounts)
    for i in range(new_accounts):
        username = extension if i == 0 and not attach and not taken else f"{extension}-{taken + i + 1}"
        account, secret = create_account(session, pbx, username)
        account.extension_id = ext.id
        credentials[username] = secret
    session.flush()
    session.refresh(ext)
    session.refresh(room)
    return CreatedRoom(room, credentials)


def update_room(
    session: Session,
    pbx: Pbx,
    extension: str,
    *,
    name: str | None = None,
    template: str | None = None,
    failovers: dict[str, str] | None = None,
    clear: list[str] | None = None,
    **overrides: Any,
) -> Room:
    room = get_room(session, pbx, extension)
    if name is not None:
        room.name = bounded_text(name, 80, "room name") or room.extension
        extensions.update_extension(session, pbx, room.extension, name=room.name)
    if template is not None:
        room.template_id = get_template(session, pbx, template).id
    for key, value in _check_values(session, pbx, overrides).items():
        setattr(room, key, value)
    for key in clear or []:  # back to the template's value
        attr = {
            "standard_class": "standard_class_id",
            "restricted_class": "restricted_class_id",
            "building": "organization",
            "floor": "organizational_unit",
        }.get(key, key)
        if attr not in TEMPLATE_FIELDS:
            raise InvalidValue("hotel.cannot_clear", setting=key)
        setattr(room, attr, None)
    if failovers:
        _set_failovers(room, check_failovers(failovers), replace=False)
    session.flush()
    session.refresh(room)
    return room


def delete_room(session: Session, pbx: Pbx, extension: str) -> None:
    room = get_room(session, pbx, extension)
    if open_stay(session, room) is not None:
        raise InUse("hotel.occupied_check_out_first", room=extension)
    # The room first (the live panels see it go), then its extension and,
    # by cascade, its accounts: nothing of it is left, the number is free.
    session.delete(room)
    session.flush()
    extensions.delete_extension(session, pbx, extension)


def open_stay(session: Session, room: Room) -> Stay | None:
    return session.scalars(select(Stay).where(Stay.room_id == room.id, Stay.checkout_at.is_(None))).first()


@dataclass(frozen=True)
class RoomFilter:
    building: str | None = None
    floor: str | None = None
    clean: bool | None = None
    occupied: bool | None = None
    text: str | None = None  # over guest names and notes of the current stay

    def matches(self, building: str, floor: str, clean: bool, occupied: bool, stay: dict[str, Any] | None) -> bool:
        """A room (as ``effective`` or the panel shows it) passes every filter given."""
        if self.building is not None and building != self.building:
            return False
        if self.floor is not None and floor != self.floor:
            return False
        if self.clean is not None and clean != self.clean:
            return False
        if self.occupied is not None and occupied != self.occupied:
            return False
        needle = (self.text or "").casefold()
        if needle:
            haystack = " ".join([stay["owner"], *stay["guests"], stay["notes"]]).casefold() if stay else ""
            return needle in haystack
        return True


def list_rooms(session: Session, pbx: Pbx, filters: RoomFilter | None = None) -> list[EffectiveRoom]:
    filters = filters or RoomFilter()
    rooms = session.scalars(select(Room).where(Room.pbx_id == pbx.id).order_by(Room.extension)).all()
    stays = {
        s.room_id: s for s in session.scalars(select(Stay).where(Stay.pbx_id == pbx.id, Stay.checkout_at.is_(None)))
    }
    names = class_names(session, pbx)
    views = (effective(room, names, stays.get(room.id)) for room in rooms)
    return [v for v in views if filters.matches(v.building, v.floor, v.clean, v.occupied, v.stay)]


def room_view(session: Session, pbx: Pbx, extension: str) -> EffectiveRoom:
    room = get_room(session, pbx, extension)
    return effective(room, class_names(session, pbx), open_stay(session, room))


def class_kind_for(stay: Stay | None) -> ClassKind:
    """Free rooms are restricted; occupied ones use the class chosen at check-in."""
    return ClassKind.RESTRICTED if stay is None else stay.outbound
