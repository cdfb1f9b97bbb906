"""Cost profiles and their rules in the browser, for the PBX's
administrators: a profile per outgoing line (or the default one), its rules
(exact number, prefix, all other numbers), and the tariff as a CSV file to
download and to upload (added to the rules, or replacing them; all or
nothing, each problem naming its line). The same services as
``kalliope-tel billing profiles|rules``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel import catalogue
from kalliope_tel.billing import profiles
from kalliope_tel.billing.models import CostProfile
from kalliope_tel.billing.rating import Match, RuleConflict
from kalliope_tel.container import Container
from kalliope_tel.files import decode_text, read_bounded, safe_file_name
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.web import deps, records
from kalliope_tel.web.i18n import pick_language
from kalliope_tel.web.records import Field as F

API = "/api/v1/pbx/{pbx}/billing"
MAX_CSV_BYTES = 200 * 1024  # a tariff of a few thousand rules; under the body gate's cap

PAGE = records.page(
    records.Page(
        "admin/billing",
        "costs.title",
        (
            records.Records(
                "profiles",
                "costs.profiles",
                "/billing/profiles",
                "name",
                (
                    F("name", "costs.name", required=True, maxlength=80, fixed=True),
                    F("line", "costs.line", maxlength=80, fixed=True, hint="costs.line_hint"),
                    F("currency", "costs.currency", required=True, maxlength=3, fixed=True),
                    F("description", "costs.description", maxlength=200, fixed=True),
                    F("rules", "costs.rules_count", "number", form=False),
                ),
                intro="costs.profiles_intro",
                edit=False,
                actions=(
                    records.Action("rules.csv", "costs.export", download=True),
                    records.Action("rules?replace=false", "costs.import_add", upload=".csv,text/csv"),
                    records.Action(
                        "rules?replace=true", "costs.import_replace", "costs.replace_confirm", True, ".csv,text/csv"
                    ),
                ),
            ),
            records.Records(
                "rules",
                "costs.rules",
                "/billing/rules",
                "id",
                (
                    F("profile", "costs.profile", "select", True, choices="profiles", fixed=True),
                    F("match", "costs.match", "select", True, records.enum_options(Match, "match"), fixed=True),
                    F("digits", "costs.digits", "tel", maxlength=32, fixed=True),
                    F("connection_fee", "costs.connection_fee", maxlength=12, fixed=True),
                    F("per_minute", "costs.per_minute", required=True, maxlength=12, fixed=True),
                    F("first_increment", "costs.first_increment", "number", low=1, high=3600, fixed=True),
                    F("next_increment", "costs.next_increment", "number", low=1, high=3600, fixed=True),
                    F("minimum", "costs.minimum", maxlength=12, fixed=True, listed=False),
                    F("description", "costs.description", maxlength=200, fixed=True),
                ),
                intro="costs.rules_intro",
                edit=False,
                shown="digits",
            ),
        ),
        intro="costs.intro",
    )
)


class NewProfile(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    line: str = Field(default="", max_length=80)
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    description: str = Field(default="", max_length=200)


class NewRule(BaseModel):
    profile: str = Field(min_length=1, max_length=80)
    match: Literal["exact", "prefix", "other"]
    digits: str = Field(default="", max_length=32)
    connection_fee: str = Field(default="0", max_length=12)
    per_minute: str = Field(default="0", max_length=12)
    first_increment: int | None = Field(default=None, ge=1, le=3600)
    next_increment: int | None = Field(default=None, ge=1, le=3600)
    minimum: str = Field(default="0", max_length=12)
    description: str = Field(default="", max_length=200)


def profile_view(session: Session, row: CostProfile) -> dict[str, Any]:
    keys = ("name", "line", "currency", "description")
    return {**{k: getattr(row, k) for k in keys}, "rules": len(profiles.rules_of(session, row))}


def rule_rows(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
    rows = []
    for profile in profiles.list_profiles(session, pbx):
        for rule in profiles.rules_of(session, profile):
            view = profiles.rule_view(rule, profile.currency)
            rows.append({"id": f"{profile.name}|{view['match']}|{view['digits']}", "profile": profile.name, **view})
    return rows


def _profiles(session: Session, pbx: Pbx) -> dict[str, list[str]]:
    return {"profiles": [p.name for p in profiles.list_profiles(session, pbx)]}


def _read_csv(file: UploadFile) -> str:
    data = read_bounded(file.file, MAX_CSV_BYTES)
    if data is None:
        raise RuleConflict("costs.csv_too_large", limit=MAX_CSV_BYTES >> 10)
    return decode_text(data)


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["billing"])

    @r.get(API + "/profiles")
    def list_profiles(caller: deps.Admin) -> list[dict[str, Any]]:
        """The cost profiles: one per outgoing line, and the default."""
        with deps.unit_of_work(caller.request) as session:
            return [profile_view(session, p) for p in profiles.list_profiles(session, caller.pbx(session))]

    @r.post(API + "/profiles", status_code=201)
    def add_profile(caller: deps.Admin, body: NewProfile) -> dict[str, Any]:
        """Add a profile for a line ("" : every line without its own)."""
        with deps.unit_of_work(caller.request) as session:
            row = profiles.create_profile(
                session, caller.pbx(session), body.name.strip(), line=body.line.strip(),
                currency=body.currency.upper(), description=body.description,
            )  # fmt: skip
            return profile_view(session, row)

    @r.delete(API + "/profiles/{name}", status_code=204)
    def remove_profile(caller: deps.Admin, name: str) -> None:
        """Remove a profile (calls priced keep their cost)."""
        with deps.unit_of_work(caller.request) as session:
            profiles.remove_profile(session, caller.pbx(session), name)

    @r.get(API + "/profiles/{name}/rules.csv")
    def export_rules(caller: deps.Admin, name: str) -> Response:
        """The profile's rules as CSV (the import's columns)."""
        with deps.unit_of_work(caller.request) as session:
            text = profiles.export_csv(session, profiles.get_profile(session, caller.pbx(session), name))
        filename = safe_file_name(f"{name}-rules.csv")
        return Response(
            "\ufeff" + text,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    @r.post(API + "/profiles/{name}/rules")
    def import_rules(
        caller: deps.Admin,
        request: Request,
        name: str,
        file: Annotated[UploadFile, File()],
        replace: bool = Query(default=False),
    ) -> dict[str, Any]:
        """Add the CSV's rules to the profile (or replace its rules with them): all or nothing."""
        text = _read_csv(file)
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            added = profiles.import_csv(session, pbx, profiles.get_profile(session, pbx, name), text, replace=replace)
        message = catalogue.render(pick_language(request), "costs.imported", {"name": name, "count": len(added)})
        return {"message": message, "imported": len(added)}

    @r.get(API + "/rules")
    def list_rules(caller: deps.Admin) -> list[dict[str, Any]]:
        """Every profile's rules."""
        with deps.unit_of_work(caller.request) as session:
            return rule_rows(session, caller.pbx(session))

    @r.post(API + "/rules", status_code=201)
    def add_rule(caller: deps.Admin, body: NewRule) -> dict[str, Any]:
        """Add a rule to a profile."""
        values = body.model_dump(exclude_none=True, exclude={"profile"})
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            profile = profiles.get_profile(session, pbx, body.profile)
            (row,) = profiles.add_rules(session, pbx, profile, [profiles.RuleInput(**values)])
            view = profiles.rule_view(row, profile.currency)
            return {"id": f"{profile.name}|{view['match']}|{view['digits']}", "profile": profile.name, **view}

    @r.delete(API + "/rules/{key}", status_code=204)
    def remove_rule(caller: deps.Admin, key: str) -> None:
        """Remove a rule (key: PROFILE|MATCH|DIGITS)."""
        name, _, rest = key.partition("|")
        match, _, digits = rest.partition("|")
        with deps.unit_of_work(caller.request) as session:
            profiles.remove_rule(session, profiles.get_profile(session, caller.pbx(session), name), match, digits)

    @r.get("/pbx/{pbx}/admin/billing", include_in_schema=False)
    def page(request: Request, pbx: str) -> Response:
        return records.render(request, pbx, PAGE, choices=records.choices(request, pbx, _profiles))

    return r
