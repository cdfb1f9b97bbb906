"""Omnia Manager as services: a company's PBXs and their extensions, each
change written to the log of operations (the Manager log) with before and
after. No HTTP here: the web, the API and the CLI call these with an
``Actor``; callers own the transaction and decide who may call
(``omnia.rights``). Asterisk follows on its own: every change here bumps
the PBX's configuration serial and ``serve`` applies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kalliope_tel.accounts.models import Account, AccountStatus
from kalliope_tel.accounts.services import find_account
from kalliope_tel.asterisk import confgate
from kalliope_tel.asterisk.config_state import state_of
from kalliope_tel.extensions import services as extensions
from kalliope_tel.extensions.exceptions import InvalidValue, NotFound
from kalliope_tel.extensions.models import DirectoryMode, Extension, ExtensionStatus, Licence
from kalliope_tel.features.registry import partner_function
from kalliope_tel.omnia.feature import FEATURE as OMNIA
from kalliope_tel.oplog.services import Actor, changed, record
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy import services as tenancy
from kalliope_tel.tenancy.models import Company, Pbx
from kalliope_tel.trunks.models import scope_pbx_ids, trunks_serving
from kalliope_tel.trunks.numbers import numbers_count
from kalliope_tel.users import resets
from kalliope_tel.users import services as users
from kalliope_tel.users.models import LinkKind, User

PBX_FIELDS = ("name", "timezone", "start_licences", "plus_licences", "call_centre", "hotel_enabled",
              "default_destination", "suspended_announcement", "suspended_cause")  # fmt: skip
# Causes a suspended PBX's numbers may be refused with (Q.850): unallocated
# number, call rejected, number changed, out of order, temporary failure.
SUSPENDED_CAUSES = (1, 21, 22, 27, 41)


def pbx_status(session: Session, pbx: Pbx) -> str:
    """Active, Pending (its configuration is not yet live on its Asterisk) or Suspended."""
    if not companies.is_serving(session, pbx.id):
        return "suspended"
    return "active" if state_of(session, pbx)["state"] == "applied" else "pending"


def pbx_fields(session: Session, pbx: Pbx) -> dict[str, Any]:
    used = extensions.licences_used(session, pbx)
    state = state_of(session, pbx)
    return {
        "number": pbx.id,
        "slug": pbx.slug,
        "name": pbx.name,
        "kind": pbx.kind.value,
        "timezone": pbx.timezone,
        "status": pbx_status(session, pbx),
        "error": state["error"],
        "extensions": sum(used.values()),
        "numbers": numbers_count(session, pbx),
        "start_licences": pbx.start_licences,
        "plus_licences": pbx.plus_licences,
        "start_used": used[Licence.START],
        "plus_used": used[Licence.PLUS],
        "call_centre": pbx.call_centre,
        "hotel_enabled": pbx.hotel_enabled,
        "suspended": pbx.suspended,
        "group": pbx.group_id,
        "default_destination": pbx.default_destination,
        "suspended_announcement": pbx.suspended_announcement,
        "suspended_cause": pbx.suspended_cause,
        "created_at": pbx.created_at.isoformat(timespec="seconds"),
    }


def pbxs_of(session: Session, company: Company) -> list[Pbx]:
    return list(session.scalars(select(Pbx).where(Pbx.company_id == company.id).order_by(Pbx.id)))


def pbx_of(session: Session, company: Company, slug: str) -> Pbx:
    """The company's PBX ``slug``; another company's is "not found" like a missing one."""
    pbx = session.scalars(select(Pbx).where(Pbx.slug == slug, Pbx.company_id == company.id)).first()
    if pbx is None:
        raise NotFound("manager.no_pbx", pbx=slug)
    return pbx


def _licences(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100_000:
        raise InvalidValue("manager.licence_count", setting=what)
    return value


def _check_pbx_values(session: Session, pbx: Pbx | None, fields: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(PBX_FIELDS))
    if unknown:
        raise InvalidValue("manager.unknown_field", field=unknown[0])
    values = dict(fields)
    destination = values.get("default_destination")
    if destination and (pbx is None or extensions.find_extension(session, pbx, destination) is None):
        raise InvalidValue("manager.default_destination", number=str(destination)[:20])
    if values.get("suspended_announcement"):
        try:
            confgate.sound(values["suspended_announcement"])
        except confgate.UnsafeValue as exc:
            raise InvalidValue(exc.code, **exc.params) from None
    if "suspended_cause" in values and values["suspended_cause"] not in SUSPENDED_CAUSES:
        raise InvalidValue("manager.suspended_cause", known=", ".join(map(str, SUSPENDED_CAUSES)))
    for key in ("start_licences", "plus_licences"):
        if key in values:
            values[key] = _licences(values[key], key)
            if pbx is not None and values[key] is not None:
                licence = Licence.START if key == "start_licences" else Licence.PLUS
                used = extensions.licences_used(session, pbx)[licence]
                if values[key] < used:
                    raise InvalidValue("manager.licences_below_used", setting=key, used=used)
    return values


def create_pbx(session: Session, actor: Actor, company: Company, slug: str, **fields: Any) -> Pbx:
    values = _check_pbx_values(session, None, fields)
    pbx = tenancy.create_pbx(
        session, slug, values.pop("name", "") or slug, values.pop("timezone", "UTC"), company=company
    )
    pbx.hotel_enabled = False  # a new PBX of the Manager is an office until the hotel module is switched on
    for key, value in values.items():
        setattr(pbx, key, value)
    session.flush()
    record(session, actor, "log.pbx_created", "pbx", pbx.slug, company_id=company.id,
           after=pbx_fields(session, pbx))  # fmt: skip
    return pbx


def update_pbx(session: Session, actor: Actor, company: Company, pbx: Pbx, **fields: Any) -> Pbx:
    values = _check_pbx_values(session, pbx, fields)
    before = pbx_fields(session, pbx)
    if "timezone" in values or "name" in values:
        tenancy.update_pbx(session, pbx.slug, name=values.pop("name", None), timezone=values.pop("timezone", None))
    for key, value in values.items():
        setattr(pbx, key, value)
    session.flush()
    old, new = changed(before, pbx_fields(session, pbx))
    if new:
        record(session, actor, "log.pbx_updated", "pbx", pbx.slug, company_id=company.id, before=old, after=new)
    return pbx


def set_pbx_suspended(session: Session, actor: Actor, company: Company, pbx: Pbx, suspended: bool) -> Pbx:
    if pbx.suspended is not suspended:
        pbx.suspended = suspended
        # What serves changes: its configuration is rendered again (no endpoints while suspended).
        session.execute(update(Pbx).where(Pbx.id == pbx.id).values(config_serial=Pbx.config_serial + 1))
        session.flush()
        session.refresh(pbx)
        operation = "log.pbx_suspended" if suspended else "log.pbx_resumed"
        record(session, actor, operation, "pbx", pbx.slug, company_id=company.id,
               before={"suspended": not suspended}, after={"suspended": suspended})  # fmt: skip
    return pbx


def configure_seat(session: Session, actor: Actor, company: Company, pbx: Pbx, account_id: int) -> str:
    """ "Configure PBX": the Manager administrator becomes an administrator
    of the PBX's own pages (logged when new); returns where they open."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("account.not_found", id=account_id)
    user, made = users.administrator_seat(session, pbx, account)
    if made:
        record(session, actor, "log.pbx_seat", "pbx", pbx.slug, company_id=company.id,
               after={"administrator": account.email, "user": user.name})  # fmt: skip
    return f"/pbx/{pbx.slug}/admin"


def delete_pbx(session: Session, actor: Actor, company: Company, pbx: Pbx) -> str:
    """The PBX and every row of it; returns the slug whose generated files the caller removes."""
    before, slug = pbx_fields(session, pbx), pbx.slug
    neighbours = _neighbours(session, pbx)
    tenancy.remove_pbx(session, slug)
    if neighbours:  # the trunk and group files they render list this PBX's numbers and extensions
        session.execute(update(Pbx).where(Pbx.id.in_(neighbours)).values(config_serial=Pbx.config_serial + 1))
    record(session, actor, "log.pbx_deleted", "pbx", slug, company_id=company.id, before=before)
    return slug


def _neighbours(session: Session, pbx: Pbx) -> set[int]:
    """The other PBXs that render a file with this one in it: those its
    trunks serve, and its group's members."""
    ids = {i for trunk in trunks_serving(session, pbx) for i in scope_pbx_ids(session, trunk.company_id)}
    if pbx.group_id is not None:
        ids |= set(session.scalars(select(Pbx.id).where(Pbx.group_id == pbx.group_id)))
    return ids - {pbx.id}


# ------------------------------------------------------------------ extensions
def personal_room(session: Session, pbx: Pbx, ext: Extension) -> None:
    """Plus gives the extension a personal meeting room (LAM's); Start takes it away."""
    if ext.licence is Licence.PLUS:
        partner_function(OMNIA, "lam", "open_personal_room")(session, pbx, ext.id, ext.number)
    else:
        partner_function(OMNIA, "lam", "close_personal_room")(session, ext.id)


def meeting_rooms(session: Session, pbx: Pbx, exts: list[Extension]) -> dict[int, dict[str, Any]]:
    rooms: dict[int, dict[str, Any]] = partner_function(OMNIA, "lam", "personal_rooms")(
        session, pbx, [e.id for e in exts if e.licence is Licence.PLUS]
    )
    return rooms


def extension_fields(
    session: Session,
    pbx: Pbx,
    ext: Extension,
    *,
    pending: bool | None = None,
    rooms: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    user = session.get(User, ext.user_id) if ext.user_id else None
    room = (rooms if rooms is not None else meeting_rooms(session, pbx, [ext])).get(ext.id, {})
    if ext.status is ExtensionStatus.SUSPENDED or not companies.is_serving(session, pbx.id):
        status = "suspended"
    else:
        live = state_of(session, pbx)["state"] == "applied" if pending is None else not pending
        status = "active" if live else "pending"
    return {
        "number": ext.number,
        "name": ext.name,
        "first_name": user.account.first_name if user else "",
        "last_name": user.account.last_name if user else "",
        "email": user.email if user else "",
        "user": user.name if user else "",
        "licence": ext.licence.value,
        "directory_mode": ext.directory_mode.value,
        "show_in_phonebook": ext.show_in_phonebook,
        "meeting_id": room.get("meeting_id"),
        "meeting_dial_in": room.get("dial_in", ""),
        "status": status,
        "accounts": sorted(a.username for a in ext.accounts),
        "pin": extensions.has_pin(session, ext),
        "created_at": ext.created_at.isoformat(timespec="seconds"),
    }


def list_extensions(
    session: Session, pbx: Pbx, filters: extensions.ExtensionFilter | None = None
) -> list[dict[str, Any]]:
    pending = state_of(session, pbx)["state"] != "applied"
    rows = extensions.list_extensions(session, pbx, filters)
    rooms = meeting_rooms(session, pbx, rows)
    return [extension_fields(session, pbx, e, pending=pending, rooms=rooms) for e in rows]


@dataclass(frozen=True)
class NewUser:
    """A user for the apps, made with the extension: a new person gets the
    invitation (a link valid 72 hours to choose a password) at ``site``."""

    email: str
    first_name: str = ""
    last_name: str = ""
    site: str = ""
    lang: str = "en"


def user_for(session: Session, pbx: Pbx, user: str | NewUser | None, number: str) -> int | None:
    if user is None or user == "":
        return None
    if isinstance(user, str):
        return users.get_user(session, pbx, user).id
    full_name = f"{user.first_name} {user.last_name}".strip()
    name = re.sub(r"[^a-z0-9._-]", "", user.email.split("@")[0].lower())[:60] or f"ext{number}"
    if users.find_user(session, pbx, name) is not None:
        name = f"{name}-{number}"
    new_person = find_account(session, user.email.strip()) is None
    made = users.add_user(session, pbx, name, user.email, full_name)
    if new_person:
        made.account.status = AccountStatus.INVITED
        resets.request_link(session, made.account, LinkKind.INVITE, user.site, user.lang)
    return made.id


def create_extension(
    session: Session,
    actor: Actor,
    company: Company,
    pbx: Pbx,
    number: str,
    *,
    name: str = "",
    licence: Licence = Licence.START,
    pin: str | None = None,
    user: str | NewUser | None = None,
    password: str | None = None,
    directory_mode: DirectoryMode = DirectoryMode.BASIC,
) -> extensions.CreatedExtension:
    """The extension with one SIP account (its password returned once)."""
    user_id = user_for(session, pbx, user, number)
    created = extensions.create_extension(
        session, pbx, number, name=name, licence=licence, pin=pin, user_id=user_id, password=password
    )
    created.extension.directory_mode = directory_mode
    personal_room(session, pbx, created.extension)
    record(session, actor, "log.extension_created", "extension", f"{pbx.slug} {number}", company_id=company.id,
           after=extension_fields(session, pbx, created.extension, pending=True))  # fmt: skip
    return created


def update_extension(
    session: Session,
    actor: Actor,
    company: Company,
    pbx: Pbx,
    number: str,
    *,
    name: str | None = None,
    licence: Licence | None = None,
    pin: str | None = None,
    user: str | NewUser | None = None,
    clear_user: bool = False,
    directory_mode: DirectoryMode | None = None,
    show_in_phonebook: bool | None = None,
) -> Extension:
    ext = extensions.get_extension(session, pbx, number)
    before = extension_fields(session, pbx, ext, pending=False)
    user_id = user_for(session, pbx, user, number)
    ext = extensions.update_extension(
        session, pbx, number, name=name, licence=licence, user_id=user_id, clear_user=clear_user,
        directory_mode=directory_mode, show_in_phonebook=show_in_phonebook,
    )  # fmt: skip
    if pin:
        extensions.set_pin(session, ext, pin)
    if licence is not None:
        personal_room(session, pbx, ext)
    after = extension_fields(session, pbx, ext, pending=False)
    old, new = changed(before, after)
    if pin:
        old["pin"], new["pin"] = True, True  # masked in the log: "set"
    if new:
        record(session, actor, "log.extension_updated", "extension", f"{pbx.slug} {number}", company_id=company.id,
               before=old, after=new)  # fmt: skip
    return ext


def set_extension_status(
    session: Session, actor: Actor, company: Company, pbx: Pbx, number: str, status: ExtensionStatus
) -> Extension:
    ext = extensions.get_extension(session, pbx, number)
    before = ext.status.value
    if ext.status is not status:
        extensions.set_status(session, pbx, number, status)
        operation = "log.extension_suspended" if status is ExtensionStatus.SUSPENDED else "log.extension_resumed"
        record(session, actor, operation, "extension", f"{pbx.slug} {number}", company_id=company.id,
               before={"status": before}, after={"status": status.value})  # fmt: skip
    return ext


def new_passwords(session: Session, actor: Actor, company: Company, pbx: Pbx, number: str) -> dict[str, str]:
    secrets = extensions.new_passwords(session, pbx, number)
    record(session, actor, "log.extension_password", "extension", f"{pbx.slug} {number}", company_id=company.id,
           after={"password": True})  # fmt: skip
    return secrets


def delete_extension(session: Session, actor: Actor, company: Company, pbx: Pbx, number: str) -> None:
    ext = extensions.get_extension(session, pbx, number)
    before = extension_fields(session, pbx, ext, pending=False)
    extensions.delete_extension(session, pbx, number)
    record(session, actor, "log.extension_deleted", "extension", f"{pbx.slug} {number}", company_id=company.id,
           before=before)  # fmt: skip


def extension_count(session: Session, company: Company) -> int:
    query = select(func.count()).select_from(Extension).join(Pbx, Pbx.id == Extension.pbx_id)
    return session.scalar(query.where(Pbx.company_id == company.id)) or 0
