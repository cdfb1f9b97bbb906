"""Omnia Manager's API (``/api/v1/manager``): the PBXs of the company in
view and their extensions. Thin: authorise (``rights``, Manager role), one
transaction, a service of ``manager``, JSON. Every change is in the Manager
log with the caller's address and IP."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel.container import Container
from kalliope_tel.extensions.models import DirectoryMode, ExtensionStatus, Licence
from kalliope_tel.extensions.services import SORTS, ExtensionFilter, get_extension
from kalliope_tel.files import read_bounded, safe_file_name
from kalliope_tel.omnia import extensions_table, manager
from kalliope_tel.omnia.console_web import Console, allow
from kalliope_tel.omnia.generated import forget_pbx_files
from kalliope_tel.omnia.rights import Need
from kalliope_tel.oplog import services as oplog
from kalliope_tel.tables import ImportRefused
from kalliope_tel.tenancy.models import Company, Pbx
from kalliope_tel.web import deps
from kalliope_tel.web.i18n import pick_language
from kalliope_tel.web.resets_web import site_of

API = "/api/v1/manager"
SLUG = "/pbxs/{slug}"
EXT = SLUG + "/extensions"
MANAGER_KINDS = ("pbx", "extension", "trunk", "number", "group", "ring_group", "carrier")


class PbxIn(BaseModel):
    slug: str = Field(min_length=1, max_length=40)
    name: str = Field("", max_length=200)
    timezone: str = Field("UTC", max_length=64)
    start_licences: int | None = Field(None, ge=0, le=100_000)
    plus_licences: int | None = Field(None, ge=0, le=100_000)
    call_centre: bool = False
    hotel_enabled: bool = False


class PbxPatch(BaseModel):
    name: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=64)
    start_licences: int | None = Field(None, ge=0, le=100_000)
    plus_licences: int | None = Field(None, ge=0, le=100_000)
    call_centre: bool | None = None
    hotel_enabled: bool | None = None
    default_destination: str | None = Field(None, max_length=8)
    suspended_announcement: str | None = Field(None, max_length=100)
    suspended_cause: int | None = None


class NewUserIn(BaseModel):
    email: str = Field(max_length=254)
    first_name: str = Field("", max_length=80)
    last_name: str = Field("", max_length=80)


class ExtensionIn(BaseModel):
    number: str = Field(min_length=1, max_length=20)
    name: str = Field("", max_length=80)
    licence: Licence = Licence.START
    pin: str | None = Field(None, max_length=16)
    user: str | None = Field(None, max_length=80)  # an existing user of the PBX
    new_user: NewUserIn | None = None  # or a new one, invited
    directory_mode: DirectoryMode = DirectoryMode.BASIC  # how the directory publishes it


class ExtensionPatch(BaseModel):
    name: str | None = Field(None, max_length=80)
    licence: Licence | None = None
    directory_mode: DirectoryMode | None = None  # not published, number and name, or with the user's details
    show_in_phonebook: bool | None = None
    pin: str | None = Field(None, max_length=16)
    user: str | None = Field(None, max_length=80)  # "" unlinks the user
    new_user: NewUserIn | None = None


class Manager(Console):
    """An authorised Manager request: the company in view must have the Manager service."""

    def company(self, session: Session) -> Company:
        company = super().company(session)
        if not company.manager_enabled:
            raise deps.Refusal(403, "manager.not_enabled")
        return company

    def pbx(self, session: Session, slug: str) -> tuple[Company, Pbx]:
        company = self.company(session)
        return company, manager.pbx_of(session, company, slug)


Reader = Annotated[Manager, allow(Need.MANAGER, Manager)]
Changer = Annotated[Manager, allow(Need.MANAGER_CHANGE, Manager)]


def csv_download(text: str, filename: str) -> Response:
    """A table as a CSV attachment (its fields already made harmless by ``spreadsheets``)."""
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})  # fmt: skip


@contextlib.contextmanager
def uploaded(file: UploadFile, limit: int, default_name: str) -> Iterator[FilePath]:
    """An upload as a file in a private temporary folder, refused past
    ``limit`` bytes before more is read; the folder goes afterwards."""
    data = read_bounded(file.file, limit)
    if data is None:
        raise ImportRefused("csv.too_large", limit=limit >> 10)
    suffix = FilePath(safe_file_name(file.filename or default_name)).suffix.lower() or ".csv"
    with tempfile.TemporaryDirectory(prefix="kt-import-") as folder:
        path = FilePath(folder) / f"{FilePath(default_name).stem}{suffix}"
        path.write_bytes(data)
        yield path


def _who(request: Request, user: str | None, new_user: NewUserIn | None) -> str | manager.NewUser | None:
    if new_user is not None:
        return manager.NewUser(new_user.email, new_user.first_name, new_user.last_name, site_of(request),
                               pick_language(request))  # fmt: skip
    return user or None


def router(_container: Container) -> APIRouter:
    r = APIRouter(prefix=API, tags=["manager"])

    # ---------------------------------------------------------- PBXs
    @r.get("/pbxs")
    def list_pbxs(m: Reader) -> list[dict[str, Any]]:
        """The PBXs of the company in view: number, status, totals of numbers and extensions, licences."""
        with deps.unit_of_work(m.request) as session:
            return [manager.pbx_fields(session, p) for p in manager.pbxs_of(session, m.company(session))]

    @r.post("/pbxs", status_code=201)
    def create_pbx(m: Changer, body: PbxIn) -> dict[str, Any]:
        """A new PBX (single); Pending until its configuration is live on its Asterisk."""
        values = body.model_dump(exclude={"slug"})
        with deps.unit_of_work(m.request) as session:
            pbx = manager.create_pbx(session, m.actor, m.company(session), body.slug, **values)
            return manager.pbx_fields(session, pbx)

    @r.get(SLUG)
    def read_pbx(m: Reader, slug: str) -> dict[str, Any]:
        with deps.unit_of_work(m.request) as session:
            return manager.pbx_fields(session, m.pbx(session, slug)[1])

    @r.patch(SLUG)
    def update_pbx(m: Changer, slug: str, body: PbxPatch) -> dict[str, Any]:
        """Licences purchased, the call-centre licence, the hotel module, name and time zone."""
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            manager.update_pbx(session, m.actor, company, pbx, **body.model_dump(exclude_unset=True))
            return manager.pbx_fields(session, pbx)

    @r.post(SLUG + "/suspend")
    def suspend_pbx(m: Changer, slug: str) -> dict[str, Any]:
        """Suspend the PBX: its phones can neither register nor call, its jobs stop."""
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            return manager.pbx_fields(session, manager.set_pbx_suspended(session, m.actor, company, pbx, True))

    @r.post(SLUG + "/resume")
    def resume_pbx(m: Changer, slug: str) -> dict[str, Any]:
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            return manager.pbx_fields(session, manager.set_pbx_suspended(session, m.actor, company, pbx, False))

    @r.post(SLUG + "/configure")
    def configure_pbx(m: Changer, slug: str) -> dict[str, Any]:
        """Open the PBX's own administration pages (the caller becomes an administrator of the PBX, logged)."""
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            return {"href": manager.configure_seat(session, m.actor, company, pbx, m.principal.account_id)}

    @r.delete(SLUG, status_code=204)
    def delete_pbx(m: Changer, slug: str) -> Response:
        """Delete the PBX with every row of it and its generated files (serve reloads Asterisk)."""
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            remove = forget_pbx_files(deps.container_of(m.request).settings, [pbx])
            manager.delete_pbx(session, m.actor, company, pbx)
        remove()
        return Response(status_code=204)

    # ---------------------------------------------------------- extensions
    @r.get(EXT)
    def list_extensions(
        m: Reader,
        slug: str,
        q: str = Query("", max_length=100),
        licence: Licence | None = None,
        status: ExtensionStatus | None = None,
        sort: str = Query("number", pattern="^(" + "|".join(SORTS) + ")$"),
        desc: bool = False,
    ) -> list[dict[str, Any]]:
        """Number, name, surname, e-mail, licence, meeting ID and status; searched, filtered and sorted."""
        with deps.unit_of_work(m.request) as session:
            pbx = m.pbx(session, slug)[1]
            return manager.list_extensions(session, pbx, ExtensionFilter(q, licence, status, sort, desc))

    @r.get(EXT + ".csv")
    def export_extensions(m: Reader, slug: str) -> Response:
        with deps.unit_of_work(m.request) as session:
            text = extensions_table.export(session, m.pbx(session, slug)[1])
        return csv_download(text, f"extensions-{slug}.csv")

    @r.post(EXT + "/import")
    def import_extensions(m: Changer, slug: str, file: UploadFile, dry_run: bool = False) -> dict[str, Any]:
        """Extensions from CSV or XLSX: all or nothing, every refusal by line. New SIP passwords once."""
        with (
            uploaded(file, extensions_table.MAX_BYTES, "extensions.csv") as path,
            deps.unit_of_work(m.request) as session,
        ):
            company, pbx = m.pbx(session, slug)
            report = extensions_table.import_file(
                session, m.actor, company, pbx, path, dry_run=dry_run, site=site_of(m.request),
                lang=pick_language(m.request),
            )  # fmt: skip
        return report.as_dict()

    @r.post(EXT, status_code=201)
    def create_extension(m: Changer, slug: str, body: ExtensionIn) -> dict[str, Any]:
        """A new extension with its SIP account: the password is in the answer, once."""
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            created = manager.create_extension(
                session, m.actor, company, pbx, body.number, name=body.name, licence=body.licence, pin=body.pin,
                user=_who(m.request, body.user, body.new_user), directory_mode=body.directory_mode,
            )  # fmt: skip
            fields = manager.extension_fields(session, pbx, created.extension, pending=True)
            return {**fields, "credentials": created.credentials}

    @r.get(EXT + "/{number}")
    def read_extension(m: Reader, slug: str, number: str) -> dict[str, Any]:
        with deps.unit_of_work(m.request) as session:
            pbx = m.pbx(session, slug)[1]
            return manager.extension_fields(session, pbx, get_extension(session, pbx, number))

    @r.patch(EXT + "/{number}")
    def update_extension(m: Changer, slug: str, number: str, body: ExtensionPatch) -> dict[str, Any]:
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            ext = manager.update_extension(
                session, m.actor, company, pbx, number, name=body.name, licence=body.licence, pin=body.pin,
                user=_who(m.request, body.user, body.new_user), clear_user=body.user == "",
                directory_mode=body.directory_mode, show_in_phonebook=body.show_in_phonebook,
            )  # fmt: skip
            return manager.extension_fields(session, pbx, ext)

    @r.post(EXT + "/{number}/suspend")
    def suspend_extension(m: Changer, slug: str, number: str) -> dict[str, Any]:
        return _status(m, slug, number, ExtensionStatus.SUSPENDED)

    @r.post(EXT + "/{number}/resume")
    def resume_extension(m: Changer, slug: str, number: str) -> dict[str, Any]:
        return _status(m, slug, number, ExtensionStatus.ACTIVE)

    @r.post(EXT + "/{number}/password")
    def new_password(m: Changer, slug: str, number: str) -> dict[str, Any]:
        """New SIP passwords (in the answer, once); the old ones stop working."""
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            return {"credentials": manager.new_passwords(session, m.actor, company, pbx, number)}

    @r.delete(EXT + "/{number}", status_code=204)
    def delete_extension(m: Changer, slug: str, number: str) -> Response:
        """The extension, its accounts, PIN and hint; the number is free at once."""
        with deps.unit_of_work(m.request) as session:
            company, pbx = m.pbx(session, slug)
            manager.delete_extension(session, m.actor, company, pbx, number)
        return Response(status_code=204)

    # ---------------------------------------------------------- log
    @r.get("/log")
    def read_log(m: Reader, before: int | None = None) -> list[dict[str, Any]]:
        """The Manager log: every PBX and extension operation of the company in view, newest first."""
        with deps.unit_of_work(m.request) as session:
            company = m.company(session)
            rows = oplog.entries(session, {company.id}, before_id=before, kinds=MANAGER_KINDS)
            return [oplog.as_dict(e) for e in rows]

    return r


def _status(m: Manager, slug: str, number: str, status: ExtensionStatus) -> dict[str, Any]:
    with deps.unit_of_work(m.request) as session:
        company, pbx = m.pbx(session, slug)
        ext = manager.set_extension_status(session, m.actor, company, pbx, number, status)
        return manager.extension_fields(session, pbx, ext)
