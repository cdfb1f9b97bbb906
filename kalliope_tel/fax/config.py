"""Fax configuration per PBX: settings, remote storages, archival paths,
templates, instances and the users enabled on them.

Instance settings a template can provide are ``None`` on the instance when
the template's value (or the built-in default) applies; ``effective`` gives
the values a call uses. Callers own the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.catalogue import Term
from kalliope_tel.extensions.models import OutboundClass
from kalliope_tel.fax.exceptions import InUse, InvalidValue, NotFound
from kalliope_tel.fax.feature import FEATURE as FAX
from kalliope_tel.fax.models import (
    TEMPLATE_FIELDS,
    ArchivePath,
    Encryption,
    FaxInstance,
    FaxSettings,
    FaxTemplate,
    InstanceUser,
    Mail2FaxAuth,
    Mail2FaxEncryption,
    PathPart,
    Permission,
    RemoteStorage,
    Separation,
    StorageKind,
)
from kalliope_tel.fax.session import MODEM_RATES, FaxOptions
from kalliope_tel.fax.spandsp import V17, V27TER, V29
from kalliope_tel.features.registry import partner_function
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import per_pbx_row
from kalliope_tel.users.models import User

MODEMS = {"v17": V17, "v29": V29, "v27ter": V27TER}
RATES = (2400, 4800, 7200, 9600, 12000, 14400)  # what T.30 and res_fax know
BUILTIN: dict[str, Any] = {
    "local_ident": "",
    "header": "",
    "max_total": 0,
    "ecm": True,
    "min_rate": 2400,
    "max_rate": 14400,
    "modem": "v17,v29,v27ter",
    "receive_enabled": True,
    "max_inbound": 0,
    "send_enabled": True,
    "max_outbound": 0,
    "outbound_class_id": None,
    "max_attempts": 3,
    "retry_minutes": 5.0,
}


def _gate(check: Any, value: Any, what: str) -> str:
    try:
        return str(check(value, what))
    except confgate.UnsafeValue as exc:
        raise InvalidValue(exc.code, **exc.params) from None


# ``setting`` names the value as the API and the forms do; its label
# (faxfield.<setting>) names it in the reader's language.
def _text(value: str, limit: int, setting: str) -> str:
    value = value.strip()
    what = Term("faxfield." + setting)
    if len(value) > limit:
        raise InvalidValue("faxconf.too_long", what=what, limit=limit, given=len(value), setting=setting)
    if any(ord(c) < 32 or ord(c) > 126 for c in value):
        raise InvalidValue("faxconf.ascii", what=what, setting=setting)
    return value


def _count(value: Any, setting: str, low: int = 0, high: int = 10_000) -> int:
    what = Term("faxfield." + setting)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidValue("faxconf.whole_number", what=what, setting=setting) from None
    if not low <= number <= high:
        raise InvalidValue("faxconf.between", what=what, low=low, high=high, setting=setting)
    return number


_Named = TypeVar("_Named", RemoteStorage, FaxTemplate, FaxInstance)


def _find(session: Session, model: type[_Named], pbx: Pbx, **where: Any) -> _Named | None:
    """The PBX's row of ``model`` matching ``where`` (name, selection, id), or None."""
    return session.scalars(select(model).filter_by(pbx_id=pbx.id, **where)).first()


# ------------------------------------------------------------------ settings
def get_settings(session: Session, pbx: Pbx) -> FaxSettings:
    return per_pbx_row(session, FaxSettings, pbx)


def update_settings(session: Session, pbx: Pbx, **values: Any) -> FaxSettings:
    row = get_settings(session, pbx)
    for key, value in values.items():
        if value is None:
            continue
        if key in ("max_inbound", "max_outbound", "max_total"):
            setattr(row, key, _count(value, key))
        elif key == "serial_number":
            row.serial_number = _gate(confgate.identifier, value, "what.serial_number") if value else ""
        else:
            raise InvalidValue("faxconf.unknown_setting", setting=key)
    session.flush()
    return row


# ------------------------------------------------------------------ storages
def add_storage(
    session: Session,
    pbx: Pbx,
    name: str,
    *,
    host: str,
    username: str,
    key_file: Path,
    known_hosts: Path,
    port: int = 22,
    directory: str = ".",
) -> RemoteStorage:
    name = _gate(confgate.identifier, name, "what.storage_name")
    if _find(session, RemoteStorage, pbx, name=name) is not None:
        raise InvalidValue("faxconf.storage_exists", name=repr(name), setting="name")
    for path, setting in ((key_file, "key_file"), (known_hosts, "known_hosts")):
        if not path.is_absolute() or not path.is_file():
            raise InvalidValue("faxconf.no_file", what=Term("faxfield." + setting), path=str(path), setting=setting)
    if key_file.stat().st_mode & 0o077:
        raise InvalidValue("faxconf.key_readable", path=str(key_file), setting="key_file")
    row = RemoteStorage(
        pbx_id=pbx.id,
        name=name,
        host=_text(host, 200, "host"),
        port=_count(port, "port", 1, 65535),
        username=_text(username, 64, "username"),
        directory=_text(directory, 300, "directory") or ".",
        key_file=str(key_file),
        known_hosts=str(known_hosts),
    )
    session.add(row)
    session.flush()
    return row


def list_storages(session: Session, pbx: Pbx) -> list[RemoteStorage]:
    return list(
        session.scalars(select(RemoteStorage).where(RemoteStorage.pbx_id == pbx.id).order_by(RemoteStorage.name))
    )


def get_storage(session: Session, pbx: Pbx, name: str) -> RemoteStorage:
    row = _find(session, RemoteStorage, pbx, name=name)
    if row is None:
        raise NotFound("faxconf.no_storage", name=repr(name), setting="storage")
    return row


def remove_storage(session: Session, pbx: Pbx, name: str) -> None:
    """Remove a remote storage no archival path uses."""
    row = get_storage(session, pbx, name)
    used = session.scalar(select(func.count()).select_from(ArchivePath).where(ArchivePath.storage_id == row.id))
    if used:
        raise InUse("faxconf.storage_used", name=repr(name), count=used)
    session.delete(row)
    session.flush()


# ------------------------------------------------------------------ archival paths
def add_archive_path(
    session: Session,
    pbx: Pbx,
    *,
    directory: str = "",
    storage: str = "",
    encryption: str = "none",
    enabled: bool = True,
) -> ArchivePath:
    """Append an archival path (local ``directory`` or remote ``storage``)."""
    if bool(directory) == bool(storage):
        raise InvalidValue("faxconf.path_kind", setting="directory")
    try:
        enc = Encryption(encryption)
    except ValueError:
        raise InvalidValue("faxconf.encryption", setting="encryption") from None
    position = (session.scalar(select(func.max(ArchivePath.position)).where(ArchivePath.pbx_id == pbx.id)) or 0) + 1
    row = ArchivePath(pbx_id=pbx.id, position=position, enabled=enabled, encryption=enc)
    if directory:
        path = Path(directory)
        if not path.is_absolute():
            raise InvalidValue("faxconf.not_absolute", path=directory, setting="directory")
        row.kind, row.directory = StorageKind.LOCAL, str(path)
    else:
        row.kind, row.storage_id = StorageKind.REMOTE, get_storage(session, pbx, storage).id
    session.add(row)
    session.flush()
    return row


def list_archive_paths(session: Session, pbx: Pbx) -> list[ArchivePath]:
    return list(session.scalars(select(ArchivePath).where(ArchivePath.pbx_id == pbx.id).order_by(ArchivePath.position)))


def set_archive_path_enabled(session: Session, pbx: Pbx, position: int, enabled: bool) -> ArchivePath:
    for row in list_archive_paths(session, pbx):
        if row.position == position:
            row.enabled = enabled
            session.flush()
            return row
    raise NotFound("faxconf.no_path", position=position)


def remove_archive_path(session: Session, pbx: Pbx, position: int) -> None:
    rows = list_archive_paths(session, pbx)
    target = next((r for r in rows if r.position == position), None)
    if target is None:
        raise NotFound("faxconf.no_path", position=position)
    session.delete(target)
    session.flush()
    for n, row in enumerate((r for r in rows if r is not target), start=1):
        row.position = n
    session.flush()


# ------------------------------------------------------------------ templates and instances
def _class_id(session: Session, pbx: Pbx, name: str) -> int:
    cls = session.scalars(
        select(OutboundClass).where(OutboundClass.pbx_id == pbx.id, OutboundClass.name == name)
    ).first()
    if cls is None:
        raise InvalidValue("faxconf.no_class", name=repr(name), setting="outbound_class")
    return cls.id


def check_values(session: Session, pbx: Pbx, values: dict[str, Any]) -> dict[str, Any]:
    """Template-able values, checked; ``outbound_class`` is given by name."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key == "outbound_class":
            out["outbound_class_id"] = _class_id(session, pbx, value)
        elif key == "local_ident":
            out[key] = _text(value, 20, key)
        elif key == "header":
            out[key] = _text(value, 50, key)
        elif key in ("max_total", "max_inbound", "max_outbound"):
            out[key] = _count(value, key)
        elif key in ("min_rate", "max_rate"):
            rate = _count(value, key, 2400, 14400)
            if rate not in RATES:
                raise InvalidValue("faxconf.rate", what=Term("faxfield." + key), rates=list(RATES), setting=key)
            out[key] = rate
        elif key == "modem":
            names = [m.strip().lower() for m in str(value).split(",") if m.strip()]
            if not names or set(names) - set(MODEMS):
                raise InvalidValue("faxconf.modem", modems=list(MODEMS), setting=key)
            out[key] = ",".join(names)
        elif key == "max_attempts":
            out[key] = _count(value, key, 1, 20)
        elif key == "retry_minutes":
            try:
                minutes = float(value)
            except (TypeError, ValueError):
                raise InvalidValue("faxconf.retry", setting=key) from None
            if not 0 <= minutes <= 24 * 60:
                raise InvalidValue("faxconf.retry", setting=key)
            out[key] = minutes
        elif key in ("ecm", "receive_enabled", "send_enabled"):
            out[key] = bool(value)
        else:
            raise InvalidValue("faxconf.unknown_setting", setting=key)
    return out


def add_template(session: Session, pbx: Pbx, name: str, **values: Any) -> FaxTemplate:
    name = _gate(confgate.identifier, name, "what.template_name")
    if _find(session, FaxTemplate, pbx, name=name) is not None:
        raise InvalidValue("faxconf.template_exists", name=repr(name), setting="name")
    row = FaxTemplate(pbx_id=pbx.id, name=name, **check_values(session, pbx, values))
    session.add(row)
    session.flush()
    return row


def update_template(session: Session, pbx: Pbx, name: str, **values: Any) -> FaxTemplate:
    """Change a template's values; its instances' rates and modems must still leave something usable."""
    row = get_template(session, pbx, name)
    for key, value in check_values(session, pbx, values).items():
        setattr(row, key, value)
    session.flush()
    for instance in session.scalars(select(FaxInstance).where(FaxInstance.template_id == row.id)):
        _check_rates(session, instance)
    return row


def get_template(session: Session, pbx: Pbx, name: str) -> FaxTemplate:
    row = _find(session, FaxTemplate, pbx, name=name)
    if row is None:
        raise NotFound("faxconf.no_template", name=repr(name), setting="template")
    return row


def list_templates(session: Session, pbx: Pbx) -> list[FaxTemplate]:
    return list(session.scalars(select(FaxTemplate).where(FaxTemplate.pbx_id == pbx.id).order_by(FaxTemplate.name)))


_INSTANCE_OWN = {
    "enabled",
    "selection",
    "template",
    "mail2fax_box",
    "mail2fax_auth",
    "mail2fax_pin",
    "mail2fax_encryption",
    "archive_prefix",
    "archive_path",
    "archive_suffix",
    "archive_separation",
}


def _own_values(session: Session, pbx: Pbx, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key == "enabled":
            out[key] = bool(value)
        elif key == "selection":
            out[key] = _gate(confgate.extension, value, "what.selection")
        elif key == "template":
            out["template_id"] = get_template(session, pbx, value).id if value else None
        elif key == "mail2fax_box":
            # The seed links an instance to a box by the box's name.
            if value and value not in partner_function(FAX, "mail2fax", "box_names")(session, pbx):
                raise InvalidValue("faxconf.no_box", box=repr(value), setting=key)
            out[key] = value or ""
        elif key == "mail2fax_pin":
            if value and (not str(value).isdigit() or not 4 <= len(str(value)) <= 16):
                raise InvalidValue("faxconf.pin", setting=key)
            out[key] = str(value)
        elif key in ("mail2fax_auth", "mail2fax_encryption", "archive_prefix", "archive_suffix", "archive_separation"):
            enum_cls = {
                "mail2fax_auth": Mail2FaxAuth,
                "mail2fax_encryption": Mail2FaxEncryption,
                "archive_prefix": PathPart,
                "archive_suffix": PathPart,
                "archive_separation": Separation,
            }[key]
            try:
                out[key] = enum_cls(value)
            except ValueError:
                raise InvalidValue(
                    "faxconf.one_of", what=Term("faxfield." + key), expected=[m.value for m in enum_cls], setting=key
                ) from None
        elif key == "archive_path":
            path = _text(value, 200, key).strip("/")
            if any(part in ("", ".", "..") for part in path.split("/")) and path:
                raise InvalidValue("faxconf.custom_path", setting=key)
            out[key] = path
    return out


def _selection_free(session: Session, pbx: Pbx, selection: str, instance: FaxInstance | None) -> None:
    holder = _find(session, FaxInstance, pbx, selection=selection)
    if holder is not None and holder is not instance:
        raise InvalidValue("faxconf.selection_taken", selection=selection, setting="selection")


def add_instance(session: Session, pbx: Pbx, name: str, selection: str, **values: Any) -> FaxInstance:
    name = _gate(confgate.identifier, name, "what.instance_name")
    if _find(session, FaxInstance, pbx, name=name) is not None:
        raise InvalidValue("faxconf.instance_exists", name=repr(name), setting="name")
    own = _own_values(session, pbx, {k: v for k, v in values.items() if k in _INSTANCE_OWN} | {"selection": selection})
    _selection_free(session, pbx, own["selection"], None)
    templated = check_values(session, pbx, {k: v for k, v in values.items() if k not in _INSTANCE_OWN})
    row = FaxInstance(pbx_id=pbx.id, name=name, **own, **templated)
    session.add(row)
    session.flush()
    _check_rates(session, row)
    return row


def update_instance(session: Session, pbx: Pbx, name: str, **values: Any) -> FaxInstance:
    row = get_instance(session, pbx, name)
    own = _own_values(session, pbx, {k: v for k, v in values.items() if k in _INSTANCE_OWN})
    if "selection" in own:
        _selection_free(session, pbx, own["selection"], row)
    for key, value in own.items():
        setattr(row, key, value)
    for key, value in check_values(session, pbx, {k: v for k, v in values.items() if k not in _INSTANCE_OWN}).items():
        setattr(row, key, value)
    session.flush()
    _check_rates(session, row)
    return row


def _check_rates(session: Session, row: FaxInstance) -> None:
    try:
        options_for(effective(session, row))
    except ValueError as exc:
        raise InvalidValue("faxconf.rates", reason=str(exc), setting="min_rate") from None


def get_instance(session: Session, pbx: Pbx, name: str) -> FaxInstance:
    row = _find(session, FaxInstance, pbx, name=name)
    if row is None:
        raise NotFound("faxconf.no_instance", name=repr(name), pbx=pbx.slug)
    return row


def instance_by_id(session: Session, pbx: Pbx, instance_id: int) -> FaxInstance:
    row = _find(session, FaxInstance, pbx, id=instance_id)
    if row is None:
        raise NotFound("faxconf.no_instance", name=instance_id, pbx=pbx.slug)
    return row


def list_instances(session: Session, pbx: Pbx) -> list[FaxInstance]:
    return list(session.scalars(select(FaxInstance).where(FaxInstance.pbx_id == pbx.id).order_by(FaxInstance.name)))


def remove_instance(session: Session, pbx: Pbx, name: str) -> None:
    from kalliope_tel.fax.models import FaxJob, FaxReceived

    row = get_instance(session, pbx, name)
    used = session.scalar(select(func.count()).select_from(FaxJob).where(FaxJob.instance_id == row.id)) or 0
    used += session.scalar(select(func.count()).select_from(FaxReceived).where(FaxReceived.instance_id == row.id)) or 0
    if used:
        raise InUse("faxconf.instance_used", name=repr(name), count=used)
    session.delete(row)
    session.flush()


@dataclass(frozen=True)
class Effective:
    """An instance's values as a call uses them."""

    id: int
    pbx_id: int
    name: str
    enabled: bool
    selection: str
    local_ident: str
    header: str
    max_total: int
    ecm: bool
    min_rate: int
    max_rate: int
    modem: str
    receive_enabled: bool
    max_inbound: int
    send_enabled: bool
    max_outbound: int
    outbound_class_id: int | None
    max_attempts: int
    retry_minutes: float


def effective(session: Session, row: FaxInstance) -> Effective:
    template = session.get(FaxTemplate, row.template_id) if row.template_id else None
    values = dict(BUILTIN)
    for key in TEMPLATE_FIELDS:
        if template is not None and getattr(template, key) is not None:
            values[key] = getattr(template, key)
        if getattr(row, key) is not None:
            values[key] = getattr(row, key)
    return Effective(row.id, row.pbx_id, row.name, row.enabled, row.selection, **values)


def options_for(values: Effective) -> FaxOptions:
    """The engine's options for a call of this instance (ValueError when the
    rates and modems leave nothing usable)."""
    modems = 0
    for name in values.modem.split(","):
        modems |= MODEMS[name]
    return FaxOptions(
        local_ident=values.local_ident,
        header=values.header,
        ecm=values.ecm,
        modems=modems,
        min_rate=values.min_rate,
        max_rate=values.max_rate,
    )


assert set(MODEMS.values()) <= set(MODEM_RATES)  # every modem named here has its rates


# ------------------------------------------------------------------ users on instances
def set_permission(session: Session, pbx: Pbx, instance: str, user: str, permission: str) -> InstanceUser:
    from kalliope_tel.users.services import get_user

    row = get_instance(session, pbx, instance)
    try:
        perm = Permission(permission)
    except ValueError:
        raise InvalidValue("faxconf.permission", setting="permission") from None
    member = get_user(session, pbx, user)
    link = session.scalars(
        select(InstanceUser).where(InstanceUser.instance_id == row.id, InstanceUser.user_id == member.id)
    ).first()
    if link is None:
        link = InstanceUser(pbx_id=pbx.id, instance_id=row.id, user_id=member.id, permission=perm)
        session.add(link)
    else:
        link.permission = perm
    session.flush()
    return link


def revoke(session: Session, pbx: Pbx, instance: str, user: str) -> None:
    from kalliope_tel.users.services import get_user

    row, member = get_instance(session, pbx, instance), get_user(session, pbx, user)
    link = session.scalars(
        select(InstanceUser).where(InstanceUser.instance_id == row.id, InstanceUser.user_id == member.id)
    ).first()
    if link is None:
        raise NotFound("faxconf.no_permission", user=repr(user), instance=repr(instance))
    session.delete(link)
    session.flush()


def instance_users(session: Session, instance_id: int) -> list[tuple[User, Permission]]:
    rows = session.execute(
        select(User, InstanceUser.permission)
        .join(InstanceUser, InstanceUser.user_id == User.id)
        .where(InstanceUser.instance_id == instance_id)
        .order_by(User.name)
    ).all()
    return [(user, perm) for user, perm in rows]


def permission_of(session: Session, instance_id: int, user_id: int) -> Permission | None:
    return session.scalar(
        select(InstanceUser.permission).where(InstanceUser.instance_id == instance_id, InstanceUser.user_id == user_id)
    )
