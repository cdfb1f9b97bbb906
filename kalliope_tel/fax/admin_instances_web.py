"""Fax instances, the users enabled on them and fax templates, in the
browser for the PBX's administrators: an instance's selection, Mail2Fax
link and authentication, archival naming, and every value a template gives
(outbound class, station id, header, rates, modems, limits, attempts). A
value an instance does not set comes from its template, else built in; the
forms send only what was changed, so inherited values stay inherited. The
same services as ``kalliope-tel fax instances|templates``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel.container import Container
from kalliope_tel.extensions.accounts import list_classes
from kalliope_tel.extensions.models import OutboundClass
from kalliope_tel.fax import config
from kalliope_tel.fax.feature import FEATURE
from kalliope_tel.fax.models import (
    FaxInstance,
    FaxTemplate,
    Mail2FaxAuth,
    Mail2FaxEncryption,
    PathPart,
    Permission,
    Separation,
)
from kalliope_tel.features.registry import partner_function, partner_runs
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.users.services import list_users
from kalliope_tel.web import deps, records
from kalliope_tel.web.records import Field as F
from kalliope_tel.web.records import enum_options as _options

API = "/api/v1/pbx/{pbx}/fax"
YES_NO = (("true", "records.yes"), ("false", "records.no"))


def field_label(key: str) -> str:
    return "faxfield." + key


_label = field_label

# Values a template gives its instances (and an instance may set itself).
_TEMPLATED = (
    F("outbound_class", _label("outbound_class"), "select", choices="classes"),
    F("local_ident", _label("local_ident"), maxlength=20),
    F("header", _label("header"), maxlength=50, listed=False),
    F("send_enabled", _label("send_enabled"), "select", options=YES_NO),
    F("receive_enabled", _label("receive_enabled"), "select", options=YES_NO),
    F("ecm", _label("ecm"), "select", options=YES_NO, listed=False),
    F(
        "min_rate",
        _label("min_rate"),
        "select",
        options=tuple((str(r), f"faxrate.{r}") for r in config.RATES),
        listed=False,
    ),
    F(
        "max_rate",
        _label("max_rate"),
        "select",
        options=tuple((str(r), f"faxrate.{r}") for r in config.RATES),
        listed=False,
    ),
    F("modem", _label("modem"), "multi", options=tuple((m, f"modem.{m}") for m in config.MODEMS), listed=False),
    F("max_total", _label("max_total"), "number", low=0, high=10000, listed=False),
    F("max_inbound", _label("max_inbound"), "number", low=0, high=10000, listed=False),
    F("max_outbound", _label("max_outbound"), "number", low=0, high=10000, listed=False),
    F("max_attempts", _label("max_attempts"), "number", low=1, high=20, listed=False),
    F("retry_minutes", _label("retry_minutes"), "number", low=0, high=1440, listed=False),
)

INSTANCES = records.page(
    records.Page(
        "admin/fax-instances",
        "faxinst.title",
        (
            records.Records(
                "instances",
                "faxinst.instances",
                "/fax/instance-config",
                "name",
                (
                    F("name", _label("name"), required=True, maxlength=40, fixed=True),
                    F("selection", _label("selection"), "tel", True, maxlength=8),
                    F("enabled", _label("enabled"), "bool"),
                    F("template", _label("template"), "select", choices="templates"),
                    *_TEMPLATED,
                    F("mail2fax_box", _label("mail2fax_box"), "select", choices="boxes", listed=False),
                    F(
                        "mail2fax_auth",
                        _label("mail2fax_auth"),
                        "select",
                        True,
                        _options(Mail2FaxAuth, "m2fauth"),
                        listed=False,
                    ),
                    F(
                        "mail2fax_pin",
                        _label("mail2fax_pin"),
                        "secret",
                        maxlength=16,
                        listed=False,
                        hint="faxinst.pin_hint",
                    ),
                    F(
                        "mail2fax_encryption",
                        _label("mail2fax_encryption"),
                        "select",
                        True,
                        _options(Mail2FaxEncryption, "m2fenc"),
                        listed=False,
                    ),
                    F(
                        "archive_prefix",
                        _label("archive_prefix"),
                        "select",
                        True,
                        _options(PathPart, "pathpart"),
                        listed=False,
                    ),
                    F("archive_path", _label("archive_path"), maxlength=200, listed=False),
                    F(
                        "archive_suffix",
                        _label("archive_suffix"),
                        "select",
                        True,
                        _options(PathPart, "pathpart"),
                        listed=False,
                    ),
                    F(
                        "archive_separation",
                        _label("archive_separation"),
                        "select",
                        True,
                        _options(Separation, "separation"),
                        listed=False,
                    ),
                ),
                intro="faxinst.intro",
            ),
            records.Records(
                "permissions",
                "faxinst.permissions",
                "/fax/permissions",
                "id",
                (
                    F("instance", _label("name"), "select", True, choices="instances", fixed=True),
                    F("user", _label("user"), "select", True, choices="users", fixed=True),
                    F("permission", _label("permission"), "select", True, _options(Permission, "permission")),
                ),
                intro="faxinst.permissions_intro",
                shown="user",
            ),
            records.Records(
                "fax-templates",
                "faxinst.templates",
                "/fax/templates",
                "name",
                (F("name", _label("name"), required=True, maxlength=40, fixed=True), *_TEMPLATED),
                intro="faxinst.templates_intro",
                remove=False,
            ),
        ),
        intro="faxinst.page_intro",
    )
)


# ------------------------------------------------------------------ bodies
class Templated(BaseModel):
    outbound_class: str | None = Field(default=None, max_length=40)
    local_ident: str | None = Field(default=None, max_length=20)
    header: str | None = Field(default=None, max_length=50)
    send_enabled: bool | None = None
    receive_enabled: bool | None = None
    ecm: bool | None = None
    min_rate: int | None = Field(default=None, ge=2400, le=14400)
    max_rate: int | None = Field(default=None, ge=2400, le=14400)
    modem: list[Literal["v17", "v29", "v27ter"]] | None = Field(default=None, max_length=3)
    max_total: int | None = Field(default=None, ge=0, le=10000)
    max_inbound: int | None = Field(default=None, ge=0, le=10000)
    max_outbound: int | None = Field(default=None, ge=0, le=10000)
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    retry_minutes: float | None = Field(default=None, ge=0, le=1440)

    def values(self) -> dict[str, Any]:
        out = self.model_dump(exclude_none=True)
        if out.get("modem") == []:
            out.pop("modem")  # none ticked: as the template (or built in) says
        if "modem" in out:
            out["modem"] = ",".join(out["modem"])
        return out


class NewTemplate(Templated):
    name: str = Field(min_length=1, max_length=40)


class InstanceChange(Templated):
    selection: str | None = Field(default=None, max_length=8)
    enabled: bool | None = None
    template: str | None = Field(default=None, max_length=40)
    mail2fax_box: str | None = Field(default=None, max_length=254)
    mail2fax_auth: str | None = Field(default=None, max_length=10)
    mail2fax_pin: str | None = Field(default=None, max_length=16)
    mail2fax_encryption: str | None = Field(default=None, max_length=10)
    archive_prefix: str | None = Field(default=None, max_length=20)
    archive_path: str | None = Field(default=None, max_length=200)
    archive_suffix: str | None = Field(default=None, max_length=20)
    archive_separation: str | None = Field(default=None, max_length=20)


class NewInstance(InstanceChange):
    name: str = Field(min_length=1, max_length=40)
    selection: str = Field(min_length=1, max_length=8)


class NewPermission(BaseModel):
    instance: str = Field(min_length=1, max_length=40)
    user: str = Field(min_length=1, max_length=80)
    permission: Literal["receive", "send", "both"]


class PermissionChange(BaseModel):
    permission: Literal["receive", "send", "both"]


# ------------------------------------------------------------------ views
def _class_name(session: Session, class_id: int | None) -> str:
    row = session.get(OutboundClass, class_id) if class_id else None
    return row.name if row else ""


def _templated_view(session: Session, row: FaxTemplate | FaxInstance) -> dict[str, Any]:
    """The row's own values ("" where it inherits), as the forms show them."""
    view: dict[str, Any] = {"outbound_class": _class_name(session, row.outbound_class_id)}
    for key in ("local_ident", "header", "max_total", "max_inbound", "max_outbound", "max_attempts", "retry_minutes"):
        view[key] = getattr(row, key)
    for key in ("send_enabled", "receive_enabled", "ecm"):
        value = getattr(row, key)
        view[key] = "" if value is None else str(value).lower()
    for key in ("min_rate", "max_rate"):
        value = getattr(row, key)
        view[key] = "" if value is None else str(value)
    view["modem"] = row.modem.split(",") if row.modem else []
    return view


def instance_view(session: Session, row: FaxInstance) -> dict[str, Any]:
    template = session.get(FaxTemplate, row.template_id) if row.template_id else None
    view = {"name": row.name, "selection": row.selection, "enabled": row.enabled}
    view |= {"template": template.name if template else "", **_templated_view(session, row)}
    effective = config.effective(session, row)
    # What the list shows is what calls use (own value, else the template's, else built in).
    view |= {
        "send_enabled": str(effective.send_enabled).lower(),
        "receive_enabled": str(effective.receive_enabled).lower(),
    }
    view["outbound_class"] = _class_name(session, effective.outbound_class_id)
    view["local_ident"] = effective.local_ident
    for key in ("mail2fax_box", "mail2fax_auth", "mail2fax_encryption", "archive_prefix", "archive_path",
                "archive_suffix", "archive_separation"):  # fmt: skip
        value = getattr(row, key)
        view[key] = getattr(value, "value", value)
    view["mail2fax_pin"] = ""  # never shown: blank keeps it
    return view


def permission_rows(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
    rows = []
    for instance in config.list_instances(session, pbx):
        for user, permission in config.instance_users(session, instance.id):
            key = f"{instance.name}:{user.name}"
            rows.append({"id": key, "instance": instance.name, "user": user.name, "permission": permission.value})
    return rows


def page_lists(container: Container) -> Callable[[Session, Pbx], dict[str, list[str]]]:
    """What the fax pages' selects offer; Mail2Fax boxes when Mail2Fax runs."""
    boxes = partner_runs(container, FEATURE, "mail2fax")

    def lists(session: Session, pbx: Pbx) -> dict[str, list[str]]:
        return {
            "classes": [c.name for c in list_classes(session, pbx)],
            "templates": [t.name for t in config.list_templates(session, pbx)],
            "instances": [i.name for i in config.list_instances(session, pbx)],
            "storages": [s.name for s in config.list_storages(session, pbx)],
            "users": [u.name for u in list_users(session, pbx)],
            "boxes": partner_function(FEATURE, "mail2fax", "box_names")(session, pbx) if boxes else [],
        }

    return lists


def _permission_key(key: str) -> tuple[str, str]:
    instance, _, user = key.partition(":")
    return instance, user


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["fax"])

    @r.get(API + "/instance-config")
    def list_instances(caller: deps.Admin) -> list[dict[str, Any]]:
        """The fax instances: own values (blank: from the template) and what calls use."""
        with deps.unit_of_work(caller.request) as session:
            return [instance_view(session, i) for i in config.list_instances(session, caller.pbx(session))]

    @r.post(API + "/instance-config", status_code=201)
    def add_instance(caller: deps.Admin, body: NewInstance) -> dict[str, Any]:
        """Add a fax instance answering on its selection."""
        values = body.values()
        name, selection = values.pop("name"), values.pop("selection")
        with deps.unit_of_work(caller.request) as session:
            return instance_view(session, config.add_instance(session, caller.pbx(session), name, selection, **values))

    @r.patch(API + "/instance-config/{name}")
    def change_instance(caller: deps.Admin, name: str, body: InstanceChange) -> dict[str, Any]:
        """Change what is given (an empty PIN keeps the one set)."""
        values = body.values()
        if values.get("mail2fax_pin") == "":
            values.pop("mail2fax_pin")
        with deps.unit_of_work(caller.request) as session:
            return instance_view(session, config.update_instance(session, caller.pbx(session), name, **values))

    @r.delete(API + "/instance-config/{name}", status_code=204)
    def remove_instance(caller: deps.Admin, name: str) -> None:
        """Remove an instance with nothing in the register (else disable it)."""
        with deps.unit_of_work(caller.request) as session:
            config.remove_instance(session, caller.pbx(session), name)

    @r.get(API + "/permissions")
    def list_permissions(caller: deps.Admin) -> list[dict[str, Any]]:
        """Who may send or receive on each instance."""
        with deps.unit_of_work(caller.request) as session:
            return permission_rows(session, caller.pbx(session))

    @r.post(API + "/permissions", status_code=201)
    def add_permission(caller: deps.Admin, body: NewPermission) -> dict[str, Any]:
        """Enable a user on an instance (receive, send or both)."""
        with deps.unit_of_work(caller.request) as session:
            config.set_permission(session, caller.pbx(session), body.instance, body.user, body.permission)
            return {"id": f"{body.instance}:{body.user}", **body.model_dump()}

    @r.patch(API + "/permissions/{key}")
    def change_permission(caller: deps.Admin, key: str, body: PermissionChange) -> dict[str, Any]:
        """Change a user's permission on an instance (key: INSTANCE:USER)."""
        instance, user = _permission_key(key)
        with deps.unit_of_work(caller.request) as session:
            config.set_permission(session, caller.pbx(session), instance, user, body.permission)
            return {"id": key, "instance": instance, "user": user, "permission": body.permission}

    @r.delete(API + "/permissions/{key}", status_code=204)
    def revoke_permission(caller: deps.Admin, key: str) -> None:
        """Take a user's permission on an instance away."""
        instance, user = _permission_key(key)
        with deps.unit_of_work(caller.request) as session:
            config.revoke(session, caller.pbx(session), instance, user)

    @r.get(API + "/templates")
    def list_templates(caller: deps.Admin) -> list[dict[str, Any]]:
        """Fax templates: the values their instances take unless they set their own."""
        with deps.unit_of_work(caller.request) as session:
            return [
                {"name": t.name, **_templated_view(session, t)}
                for t in config.list_templates(session, caller.pbx(session))
            ]

    @r.post(API + "/templates", status_code=201)
    def add_template(caller: deps.Admin, body: NewTemplate) -> dict[str, Any]:
        """Add a fax template."""
        values = body.values()
        name = values.pop("name")
        with deps.unit_of_work(caller.request) as session:
            row = config.add_template(session, caller.pbx(session), name, **values)
            return {"name": row.name, **_templated_view(session, row)}

    @r.patch(API + "/templates/{name}")
    def change_template(caller: deps.Admin, name: str, body: Templated) -> dict[str, Any]:
        """Change a template's values (its instances follow, where they do not set their own)."""
        with deps.unit_of_work(caller.request) as session:
            row = config.update_template(session, caller.pbx(session), name, **body.values())
            return {"name": row.name, **_templated_view(session, row)}

    return r
