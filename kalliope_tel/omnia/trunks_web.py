"""Omnia Manager's API for SIP trunks, numbers and groups of PBXs (under
``/api/v1/manager``). Thin: authorise (Manager role in the view), one
transaction, a service, JSON. A trunk's password goes in and never comes
out; the trunk list carries the registration state Asterisk reports now.
Carriers are the installation's: listed here, kept by its operators
(``omnia carriers``). Groups join customers' PBXs, so only the partner's
members manage them (in a customer's view too)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, UploadFile
from pydantic import BaseModel, Field

from kalliope_tel.container import Container
from kalliope_tel.groups import services as groups
from kalliope_tel.omnia.console_web import allow
from kalliope_tel.omnia.manager import pbxs_of
from kalliope_tel.omnia.manager_web import API, SLUG, Manager, csv_download, uploaded
from kalliope_tel.omnia.rights import Need
from kalliope_tel.tenancy.models import CompanyKind
from kalliope_tel.trunks import numbers, numbers_table
from kalliope_tel.trunks import services as trunks
from kalliope_tel.trunks.models import SipTrunk
from kalliope_tel.trunks.registration import trunk_states
from kalliope_tel.web import deps

NUMBERS = SLUG + "/numbers"


class TrunkIn(BaseModel):
    description: str = Field(min_length=1, max_length=200)
    carrier: str = Field(min_length=1, max_length=60)
    endpoint: str | None = Field(None, max_length=100)
    auth_required: bool = True
    username: str = Field("", max_length=64)
    password: str = Field("", max_length=128)


class TrunkPatch(BaseModel):
    description: str | None = Field(None, max_length=200)
    carrier: str | None = Field(None, max_length=60)
    endpoint: str | None = Field(None, max_length=100)
    auth_required: bool | None = None
    username: str | None = Field(None, max_length=64)
    password: str | None = Field(None, max_length=128)


class NumberIn(BaseModel):
    number: str = Field(min_length=1, max_length=20)
    type: int = Field(0, ge=0, le=3)
    trunk: int | None = None
    new_trunk: TrunkIn | None = None  # the seed's "Nuovo SIP Trunk" from the same form


class GroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    kind: str = Field(pattern="^(shared|numbering)$")


class MembershipIn(BaseModel):
    group: str | None = Field(None, max_length=60)  # None: single again


class RingGroupIn(BaseModel):
    number: str = Field(min_length=2, max_length=8)
    name: str = Field("", max_length=80)
    members: list[str] = Field(min_length=1, max_length=100)  # "slug/extension"


Reader = Annotated[Manager, allow(Need.MANAGER, Manager)]
Changer = Annotated[Manager, allow(Need.MANAGER_CHANGE, Manager)]


def _rows(m: Manager, found: list[SipTrunk]) -> list[dict[str, Any]]:
    states = trunk_states(deps.container_of(m.request), found)
    return [{**trunks.trunk_fields(t), "registration": states[t.id]} for t in found]


def _partner_seat(m: Manager) -> None:
    if m.view.membership.kind is not CompanyKind.PARTNER:
        raise deps.Refusal(403, "groups.partner_only")


def _trunk_values(body: BaseModel) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    return {k: v for k, v in values.items() if not (k == "endpoint" and v is None)}


def router(_container: Container) -> APIRouter:
    r = APIRouter(prefix=API, tags=["manager"])

    @r.get("/carriers")
    def list_carriers(m: Reader) -> list[dict[str, Any]]:
        """The installation's carriers with their defaults (kept with 'omnia carriers')."""
        with deps.unit_of_work(m.request) as session:
            return [trunks.carrier_fields(c) for c in trunks.list_carriers(session)]

    # ---------------------------------------------------------- trunks
    @r.get("/trunks")
    def list_trunks(
        m: Reader, q: str = Query("", max_length=100), carrier: str = Query("", max_length=60)
    ) -> list[dict[str, Any]]:
        """Description, carrier, endpoint, username and the live registration state."""
        with deps.unit_of_work(m.request) as session:
            return _rows(m, trunks.search_trunks(trunks.trunks_of(session, m.company(session)), q, carrier))

    @r.post("/trunks", status_code=201)
    def create_trunk(m: Changer, body: TrunkIn) -> dict[str, Any]:
        with deps.unit_of_work(m.request) as session:
            return trunks.trunk_fields(trunks.create_trunk(session, m.actor, m.company(session), **_trunk_values(body)))

    @r.patch("/trunks/{trunk_id}")
    def update_trunk(m: Changer, trunk_id: int, body: TrunkPatch) -> dict[str, Any]:
        with deps.unit_of_work(m.request) as session:
            company = m.company(session)
            trunk = trunks.trunk_of(session, company, trunk_id)
            return trunks.trunk_fields(trunks.update_trunk(session, m.actor, company, trunk, **_trunk_values(body)))

    @r.delete("/trunks/{trunk_id}", status_code=204)
    def delete_trunk(m: Changer, trunk_id: int) -> Response:
        """Refused (409) while numbers use it, with the list of them."""
        with deps.unit_of_work(m.request) as session:
            company = m.company(session)
            trunks.delete_trunk(session, m.actor, company, trunks.trunk_of(session, company, trunk_id))
        return Response(status_code=204)

    # ---------------------------------------------------------- numbers
    @r.get(NUMBERS)
    def list_numbers(
        m: Reader,
        slug: str,
        q: str = Query("", max_length=100),
        status: str = Query("", pattern="^(|active|suspended)$"),
        sort: str = Query("number", pattern="^(" + "|".join(numbers.SORTS) + ")$"),
        desc: bool = False,
    ) -> list[dict[str, Any]]:
        """Number (a block as 06123456XX), type, carrier, trunk, status; searched, filtered, sorted."""
        with deps.unit_of_work(m.request) as session:
            return numbers.list_numbers(session, m.pbx(session, slug)[1], q, status, sort, desc)

    @r.post(NUMBERS, status_code=201)
    def create_number(m: Changer, slug: str, body: NumberIn) -> dict[str, Any]:
        """A number or block on a trunk serving the PBX, or on a new trunk made in the same request."""
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            trunk_id = body.trunk
            if body.new_trunk is not None:
                trunk_id = trunks.create_trunk(session, m.actor, company, **_trunk_values(body.new_trunk)).id
            if trunk_id is None:
                raise deps.Refusal(400, "trunks.no_trunk", trunk="")
            entry = numbers.create_number(session, m.actor, company, pbx, body.number, body.type, trunk_id)
            return numbers.number_fields(session, entry)

    @r.delete(NUMBERS + "/{number}", status_code=204)
    def delete_number(m: Changer, slug: str, number: str) -> Response:
        """The number is free again at once."""
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            numbers.delete_number(session, m.actor, company, pbx, number)
        return Response(status_code=204)

    @r.get(NUMBERS + ".csv")
    def export_numbers(m: Reader, slug: str) -> Response:
        with deps.unit_of_work(m.request) as session:
            text = numbers_table.export(session, m.pbx(session, slug)[1])
        return csv_download(text, f"numbers-{slug}.csv")

    @r.post(NUMBERS + "/import")
    def import_numbers(m: Changer, slug: str, file: UploadFile, dry_run: bool = False) -> dict[str, Any]:
        """Numbers from CSV (number,type,trunk): all or nothing, every refusal by line."""
        with uploaded(file, numbers_table.MAX_BYTES, "numbers.csv") as path, deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            return numbers_table.import_file(session, m.actor, company, pbx, path, dry_run=dry_run)

    # ---------------------------------------------------------- groups
    @r.get("/groups")
    def list_groups(m: Reader) -> list[dict[str, Any]]:
        """The partner's groups of PBXs; a customer sees those its own PBXs are in."""
        with deps.unit_of_work(m.request) as session:
            company = m.company(session)
            rows = [groups.group_fields(session, g) for g in groups.groups_of(session, company)]
            if m.view.membership.kind is CompanyKind.PARTNER:
                return rows
            mine = {p.group_id for p in pbxs_of(session, company)}
            return [{**row, "members": []} for row in rows if row["id"] in mine]

    @r.post("/groups", status_code=201)
    def create_group(m: Changer, body: GroupIn) -> dict[str, Any]:
        _partner_seat(m)
        with deps.unit_of_work(m.request) as session:
            group = groups.create_group(session, m.actor, m.company(session), body.name, body.kind)
            return groups.group_fields(session, group)

    @r.post(SLUG + "/group")
    def join_group(m: Changer, slug: str, body: MembershipIn) -> dict[str, Any]:
        """Put the PBX in a group of the partner (shared or numbering), or take it out (group null)."""
        _partner_seat(m)
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            chosen = groups.group_of(session, company, body.group) if body.group else None
            groups.join_group(session, m.actor, company, pbx, chosen)
            return {"pbx": pbx.slug, "group": body.group, "kind": pbx.kind.value}

    @r.put("/groups/{name}/ring-groups")
    def save_ring_group(m: Changer, name: str, body: RingGroupIn) -> dict[str, Any]:
        """A shared group's ring group, ringing extensions ("slug/number") of its members."""
        _partner_seat(m)
        members = [tuple(item.split("/", 1)) for item in body.members if "/" in item]
        with deps.unit_of_work(m.request) as session:
            group = groups.group_of(session, m.company(session), name)
            groups.save_ring_group(session, m.actor, group, body.number, body.name, members)  # type: ignore[arg-type]
            return groups.group_fields(session, group)

    @r.delete("/groups/{name}", status_code=204)
    def delete_group(m: Changer, name: str) -> Response:
        _partner_seat(m)
        with deps.unit_of_work(m.request) as session:
            company = m.company(session)
            groups.delete_group(session, m.actor, company, groups.group_of(session, company, name))
        return Response(status_code=204)

    return r
