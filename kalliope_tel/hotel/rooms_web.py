"""The hotel's rooms in the browser, for the PBX's administrators: the list
with every value resolved, adding a room (its new SIP accounts' passwords
shown once, in the answer, never again), changing one, removing a free one,
and the massive import with the seed's template file, whose preview lists
every bad line before anything is written.

The same services as ``kalliope-tel hotel rooms`` and ``hotel import``; a
change reaches Asterisk on its own (serve applies the PBX's new
configuration serial), so a room added here rings within seconds.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from kalliope_tel.container import Container
from kalliope_tel.files import read_bounded, safe_file_name
from kalliope_tel.hotel import importer, services
from kalliope_tel.hotel.exceptions import InvalidValue
from kalliope_tel.users.models import Role
from kalliope_tel.web import deps
from kalliope_tel.web.app import pbx_page
from kalliope_tel.web.i18n import pick_language

API = "/api/v1/pbx/{pbx}/room-config"
MAX_IMPORT_BYTES = 200 * 1024  # under the body gate's cap: a 2,000-room sheet is about 60 KB


class NewRoom(BaseModel):
    extension: str = Field(min_length=1, max_length=20, pattern=r"^[0-9]+$")
    name: str = Field(default="", max_length=80)
    template: str = Field(min_length=1, max_length=60)
    building: str = Field(default="", max_length=60)
    floor: str = Field(default="", max_length=60)
    new_accounts: int = Field(default=1, ge=0, le=4)


class RoomChange(BaseModel):
    name: str | None = Field(default=None, max_length=80)
    template: str | None = Field(default=None, min_length=1, max_length=60)
    building: str | None = Field(default=None, max_length=60)
    floor: str | None = Field(default=None, max_length=60)


def _overrides(building: str | None, floor: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if building is not None:
        out["organization"] = building
    if floor is not None:
        out["organizational_unit"] = floor
    return out


def router(_container: Container) -> APIRouter:
    r = APIRouter(tags=["hotel"])

    def view(caller: deps.Caller, extension: str) -> dict[str, Any]:
        with deps.unit_of_work(caller.request) as session:
            room = asdict(services.room_view(session, caller.pbx(session), extension))
            room.pop("stay", None)  # the rack's, not the administration's
            return room

    @r.get(API)
    def list_rooms(caller: deps.Admin) -> dict[str, Any]:
        """Every room with its values resolved (override, else template), and the templates to choose from."""
        with deps.unit_of_work(caller.request) as session:
            pbx = caller.pbx(session)
            rooms = [asdict(room) | {"stay": None} for room in services.list_rooms(session, pbx)]
            return {"rooms": rooms, "templates": [t.name for t in services.list_templates(session, pbx)]}

    @r.post(API, status_code=201)
    def add_room(caller: deps.Admin, body: NewRoom) -> dict[str, Any]:
        """Add a room; the answer holds its new SIP accounts' passwords, shown this once."""
        with deps.unit_of_work(caller.request) as session:
            created = services.create_room(
                session, caller.pbx(session), body.extension, body.name, body.template,
                new_accounts=body.new_accounts, **_overrides(body.building or None, body.floor or None),
            )  # fmt: skip
            credentials = dict(created.new_credentials)
        return view(caller, body.extension) | {"credentials": credentials}

    @r.patch(API + "/{extension}")
    def change_room(caller: deps.Admin, extension: str, body: RoomChange) -> dict[str, Any]:
        """Change a room's name, template, building or floor."""
        with deps.unit_of_work(caller.request) as session:
            services.update_room(
                session, caller.pbx(session), extension, name=body.name, template=body.template,
                **_overrides(body.building, body.floor),
            )  # fmt: skip
        return view(caller, extension)

    @r.delete(API + "/{extension}")
    def remove_room(caller: deps.Admin, extension: str) -> dict[str, Any]:
        """Remove a free room (an occupied one is checked out first)."""
        with deps.unit_of_work(caller.request) as session:
            services.delete_room(session, caller.pbx(session), extension)
        return {"removed": extension}

    @r.post(API + "/import")
    def import_rooms(
        caller: deps.Admin,
        file: Annotated[UploadFile, File()],
        apply: Annotated[bool, Form()] = False,
    ) -> dict[str, Any]:
        """Import rooms from the template file (CSV or XLSX). Without ``apply``
        it is a preview: every line checked, nothing written. With it, the rooms
        are written only when no line is bad."""
        rows = _read_upload(file)
        with deps.unit_of_work(caller.request) as session:
            savepoint = session.begin_nested()
            try:
                report = importer.import_rooms(session, caller.pbx(session), rows, skip_bad=True)
            except InvalidValue:
                savepoint.rollback()
                raise
            lang = pick_language(caller.request)
            bad = [{"line": line, "reason": exc.text(lang)} for line, exc in report.refusals]
            if not apply or bad:
                savepoint.rollback()  # a preview, or a file with bad lines: nothing is written
                return {"applied": False, "rows": len(rows), "valid": report.imported, "errors": bad}
            savepoint.commit()
            return {"applied": True, "rows": len(rows), "valid": report.imported, "errors": [],
                    "credentials": report.credentials}  # fmt: skip

    @r.get(API + "/import-template.{kind}")
    def import_template(caller: deps.Admin, kind: str) -> FileResponse:
        """The import template (header and an example row), as CSV or XLSX."""
        if kind not in ("csv", "xlsx"):
            raise InvalidValue("hotel.template_kind")
        folder = Path(tempfile.mkdtemp(prefix="kt-template-"))
        path = folder / f"rooms-template.{kind}"
        importer.write_template(path)
        cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)  # once the file is sent
        return FileResponse(path, filename=path.name, background=cleanup)

    @r.get("/pbx/{pbx}/admin/rooms", include_in_schema=False)
    def rooms_page(request: Request, pbx: str) -> Response:
        return pbx_page(request, pbx, "rooms_admin.html", Role.ADMIN)

    return r


def _read_upload(file: UploadFile) -> list[importer.Row]:
    """The upload, bounded before it is read whole, parsed from a private temporary file."""
    data = read_bounded(file.file, MAX_IMPORT_BYTES)
    if data is None:
        raise InvalidValue("hotel.import_too_large", limit=MAX_IMPORT_BYTES >> 10)
    suffix = Path(safe_file_name(file.filename or "rooms.csv")).suffix.lower() or ".csv"
    with tempfile.TemporaryDirectory(prefix="kt-import-") as folder:
        path = Path(folder) / f"rooms{suffix}"
        path.write_bytes(data)
        return importer.read_rows(path)
