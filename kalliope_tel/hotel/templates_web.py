"""Room templates, their default values and the outbound classes, in the
browser for the PBX's administrators: every field of the seed's panels
(phonebook, LDAP publishing, building and floor, the two classes, calls
limit, busy level, ring time, the nine failovers). The same services as
``kalliope-tel hotel templates``, ``defaults`` and ``classes``; what reaches
Asterisk is applied by serve on its own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from kalliope_tel.container import Container
from kalliope_tel.extensions import accounts as classes
from kalliope_tel.extensions.models import OutboundClass
from kalliope_tel.hotel import services
from kalliope_tel.hotel.exceptions import InvalidValue
from kalliope_tel.hotel.models import LdapMode, RoomTemplate, TemplateDefaults
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.web import deps, records
from kalliope_tel.web.records import Field as F

API = "/api/v1/pbx/{pbx}/hotel"
FAILOVER = "failover."

_VALUES = (
    F("show_in_phonebook", "templates.show_in_phonebook", "bool"),
    F("ldap_mode", "templates.ldap_mode", "select", True, tuple((m.value, f"ldap.{m.value}") for m in LdapMode)),
    F("organization", "templates.building", maxlength=60),
    F("organizational_unit", "templates.floor", maxlength=60),
    F("standard_class", "templates.standard_class", "select", True, choices="classes"),
    F("restricted_class", "templates.restricted_class", "select", True, choices="classes"),
    F("calls_limit", "templates.calls_limit", "number", True, low=0, high=3600, hint="templates.zero_unlimited"),
    F("busy_level", "templates.busy_level", "number", True, low=0, high=3600, hint="templates.zero_unlimited"),
    F("ring_timeout", "templates.ring_timeout", "number", True, low=1, high=3600),
    *(
        F(FAILOVER + key, "failover." + key, maxlength=20, listed=False, hint="templates.failover_hint")
        for key in services.FAILOVER_KEYS
    ),
)

CLASSES = records.page(
    records.Page(
        "admin/classes",
        "classes.title",
        (
            records.Records(
                "classes",
                "classes.title",
                "/hotel/classes",
                "name",
                (
                    F("name", "classes.name", required=True, maxlength=40, fixed=True),
                    F("description", "classes.description", maxlength=200),
                    F("patterns", "classes.patterns", "lines", True, hint="classes.patterns_hint"),
                    F("trunk_context", "classes.trunk_context", required=True, maxlength=80),
                ),
            ),
        ),
        intro="classes.intro",
    )
)

TEMPLATES = records.page(
    records.Page(
        "admin/templates",
        "templates.title",
        (
            records.Records(
                "templates",
                "templates.list",
                "/hotel/templates",
                "name",
                (F("name", "templates.name", required=True, maxlength=60, fixed=True), *_VALUES),
                prefill="/hotel/template-defaults",
            ),
            records.Settings(
                "defaults", "templates.defaults", "/hotel/template-defaults", _VALUES, "templates.defaults_intro"
            ),
        ),
        intro="templates.intro",
    )
)


class Values(BaseModel):
    """A template's (or the defaults') values; each failover as ``failover.OUTCOME.ORIGIN``."""

    model_config = ConfigDict(extra="allow")

    show_in_phonebook: bool | None = None
    ldap_mode: str | None = Field(default=None, max_length=20)
    organization: str | None = Field(default=None, max_length=60)
    organizational_unit: str | None = Field(default=None, max_length=60)
    standard_class: str | None = Field(default=None, max_length=40)
    restricted_class: str | None = Field(default=None, max_length=40)
    calls_limit: int | None = Field(default=None, ge=0, le=3600)
    busy_level: int | None = Field(default=None, ge=0, le=3600)
    ring_timeout: int | None = Field(default=None, ge=1, le=3600)

    def split(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The values the service takes, and the failovers ("" clears one)."""
        failovers: dict[str, str] = {}
        for key, value in (self.model_extra or {}).items():
            if key == "name":
                continue
            if not key.startswith(FAILOVER) or not isinstance(value, str | None):
                raise InvalidValue("hotel.unknown_setting", setting=key)
            failovers[key.removeprefix(FAILOVER)] = (value or "").strip()
        values = self.model_dump(exclude_none=True, exclude=set(self.model_extra or {}))
        return values, failovers


class NewTemplate(Values):
    name: str = Field(min_length=1, max_length=60)


class NewClass(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    description: str = Field(default="", max_length=200)
    patterns: list[str] = Field(min_length=1, max_length=200)
    trunk_context: str = Field(min_length=1, max_length=80)


class ClassChange(BaseModel):
    description: str | None = Field(default=None, max_length=200)
    patterns: list[str] | None = Field(default=None, min_length=1, max_length=200)
    trunk_context: str | None = Field(default=None, min_length=1, max_length=80)


def class_view(row: OutboundClass) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "patterns": list(row.patterns),
        "trunk_context": row.trunk_context,
    }


def values_view(session: Session, pbx: Pbx, row: RoomTemplate | TemplateDefaults) -> dict[str, Any]:
    names = classes.class_names(session, pbx)
    failovers = (
        row.failovers
        if isinstance(row, TemplateDefaults)
        else {f"{f.outcome.value}.{f.origin.value}": f.destination for f in row.failovers}
    )
    view: dict[str, Any] = {
        "show_in_phonebook": row.show_in_phonebook,
        "ldap_mode": row.ldap_mode.value if row.ldap_mode else "",
        "organization": row.organization or "",
        "organizational_unit": row.organizational_unit or "",
        "standard_class": names.get(row.standard_class_id or -1, ""),
        "restricted_class": names.get(row.restricted_class_id or -1, ""),
        "calls_limit": row.calls_limit,
        "busy_level": row.busy_level,
        "ring_timeout": row.ring_timeout,
    }
    view.update({FAILOVER + key: failovers.get(key, "") for key in services.FAILOVER_KEYS})
    if isinstance(row, RoomTemplate):
        view = {"name": row.name, **view}
    return view


def _failovers_for(row: RoomTemplate, wanted: dict[str, str]) -> dict[str, str]:
    """A template's failovers after a change: "" removes one."""
    current = {f"{f.outcome.value}.{f.origin.value}": f.destination for f in row.failovers}
    merged = {**current, **wanted}
    return {key: dest for key, dest in merged.items() if dest}


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["hotel"])

    # ------------------------------------------------------------ classes
    @r.get(API + "/classes")
    def list_classes(caller: deps.Admin) -> list[dict[str, Any]]:
        """The PBX's outbound classes: what each lets a room dial, and through which trunk context."""
        with deps.unit_of_work(caller.request) as session:
            return [class_view(c) for c in classes.list_classes(session, caller.pbx(session))]

    @r.post(API + "/classes", status_code=201)
    def add_class(caller: deps.Admin, body: NewClass) -> dict[str, Any]:
        """Add an outbound class."""
        with deps.unit_of_work(caller.request) as session:
            patterns = [p.strip() for p in body.patterns if p.strip()]
            row = classes.create_class(
                session, caller.pbx(session), body.name, patterns, body.trunk_context, body.description
            )
            return class_view(row)

    @r.patch(API + "/classes/{name}")
    def change_class(caller: deps.Admin, name: str, body: ClassChange) -> dict[str, Any]:
        """Change a class's description, patterns or trunk context."""
        values = body.model_dump(exclude_none=True)
        if "patterns" in values:
            values["patterns"] = [p.strip() for p in values["patterns"] if p.strip()]
        with deps.unit_of_work(caller.request) as session:
            return class_view(classes.update_class(session, caller.pbx(session), name, **values))

    @r.delete(API + "/classes/{name}", status_code=204)
    def remove_class(caller: deps.Admin, name: str) -> None:
        """Remove a class no template, room or default uses."""
        with deps.unit_of_work(caller.request) as session:
            services.delete_class(session, caller.pbx(session), name)

    # ------------------------------------------------------------ templates
    @r.get(API + "/templates")
    def list_templates(caller: deps.Admin) -> list[dict[str, Any]]:
        """The room templates, every value and failover."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            return [values_view(session, pbx, t) for t in services.list_templates(session, pbx)]

    @r.post(API + "/templates", status_code=201)
    def add_template(caller: deps.Admin, body: NewTemplate) -> dict[str, Any]:
        """Add a template; what is not given comes from the defaults."""
        values, failovers = body.split()
        values.pop("name", None)
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            row = services.create_template(session, pbx, body.name, {k: v for k, v in failovers.items() if v}, **values)
            return values_view(session, pbx, row)

    @r.patch(API + "/templates/{name}")
    def change_template(caller: deps.Admin, name: str, body: Values) -> dict[str, Any]:
        """Change a template's values and failovers (an empty failover removes it)."""
        values, failovers = body.split()
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            row = services.get_template(session, pbx, name)
            merged = _failovers_for(row, failovers)  # checked by replace_failovers; a refusal rolls all back
            row = services.update_template(session, pbx, name, **values)
            services.replace_failovers(row, merged)
            session.flush()
            return values_view(session, pbx, row)

    @r.delete(API + "/templates/{name}", status_code=204)
    def remove_template(caller: deps.Admin, name: str) -> None:
        """Remove a template no room uses."""
        with deps.unit_of_work(caller.request) as session:
            services.delete_template(session, caller.pbx(session), name)

    @r.get(API + "/template-defaults")
    def read_defaults(caller: deps.Admin) -> dict[str, Any]:
        """The values every new template starts with."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            return values_view(session, pbx, services.get_template_defaults(session, pbx))

    @r.put(API + "/template-defaults")
    def change_defaults(caller: deps.Admin, body: Values) -> dict[str, Any]:
        """Change the defaults (existing templates keep their values)."""
        values, failovers = body.split()
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            row = services.update_template_defaults(session, pbx, **values)
            row.failovers = services.check_failovers({k: v for k, v in {**row.failovers, **failovers}.items() if v})
            return values_view(session, pbx, row)

    # ------------------------------------------------------------ pages
    @r.get("/pbx/{pbx}/admin/classes", include_in_schema=False)
    def classes_page(request: Request, pbx: str) -> Response:
        return records.render(request, pbx, CLASSES)

    @r.get("/pbx/{pbx}/admin/templates", include_in_schema=False)
    def templates_page(request: Request, pbx: str) -> Response:
        return records.render(request, pbx, TEMPLATES, choices=records.choices(request, pbx, _classes))

    return r


def _classes(session: Session, pbx: Pbx) -> dict[str, list[str]]:
    return {"classes": [c.name for c in classes.list_classes(session, pbx)]}
