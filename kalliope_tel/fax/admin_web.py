"""Fax administration in the browser, for the PBX's administrators: the
seed's "FAX → FAX Settings" (simultaneous faxes, serial number), remote
storages and archival paths, fax templates, instances (selection, Mail2Fax,
archival naming) and the users enabled on each. The same services as
``kalliope-tel fax settings|storage|archive|templates|instances``; what
reaches Asterisk is applied by serve on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kalliope_tel.container import Container
from kalliope_tel.fax import config
from kalliope_tel.fax.admin_instances_web import INSTANCES, page_lists
from kalliope_tel.fax.admin_instances_web import field_label as _label
from kalliope_tel.fax.admin_instances_web import router as instances_router
from kalliope_tel.fax.models import ArchivePath, Encryption, RemoteStorage
from kalliope_tel.web import deps, records
from kalliope_tel.web.records import Field as F
from kalliope_tel.web.records import enum_options as _options

API = "/api/v1/pbx/{pbx}/fax"


SETTINGS = records.page(
    records.Page(
        "admin/fax",
        "faxadmin.title",
        (
            records.Settings(
                "fax-settings",
                "faxadmin.settings",
                "/fax/settings",
                (
                    F("max_total", _label("max_total"), "number", True, low=0, high=10000),
                    F("max_inbound", _label("max_inbound"), "number", True, low=0, high=10000),
                    F("max_outbound", _label("max_outbound"), "number", True, low=0, high=10000),
                    F("serial_number", _label("serial_number"), maxlength=40),
                ),
            ),
            records.Records(
                "storages",
                "faxadmin.storages",
                "/fax/storages",
                "name",
                (
                    F("name", _label("name"), required=True, maxlength=40, fixed=True),
                    F("host", _label("host"), required=True, maxlength=200, fixed=True),
                    F("port", _label("port"), "number", True, low=1, high=65535, fixed=True),
                    F("username", _label("username"), required=True, maxlength=64, fixed=True),
                    F("directory", _label("directory"), maxlength=300, fixed=True),
                    F(
                        "key_file",
                        _label("key_file"),
                        required=True,
                        maxlength=300,
                        fixed=True,
                        hint="faxadmin.key_hint",
                    ),
                    F("known_hosts", _label("known_hosts"), required=True, maxlength=300, fixed=True, listed=False),
                ),
                intro="faxadmin.storages_intro",
                edit=False,
            ),
            records.Records(
                "paths",
                "faxadmin.paths",
                "/fax/archive-paths",
                "position",
                (
                    F("position", _label("position"), "number", form=False),
                    F("directory", _label("directory"), maxlength=300, fixed=True, hint="faxadmin.path_hint"),
                    F("storage", _label("storage"), "select", choices="storages", fixed=True),
                    F(
                        "encryption",
                        _label("encryption"),
                        "select",
                        True,
                        _options(Encryption, "encryption"),
                        fixed=True,
                    ),
                    F("enabled", _label("enabled"), "bool"),
                ),
                intro="faxadmin.paths_intro",
            ),
        ),
        intro="faxadmin.intro",
    )
)


# ------------------------------------------------------------------ bodies
class SettingsChange(BaseModel):
    max_total: int | None = Field(default=None, ge=0, le=10000)
    max_inbound: int | None = Field(default=None, ge=0, le=10000)
    max_outbound: int | None = Field(default=None, ge=0, le=10000)
    serial_number: str | None = Field(default=None, max_length=40)


class NewStorage(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    host: str = Field(min_length=1, max_length=200)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=64)
    directory: str = Field(default=".", max_length=300)
    key_file: str = Field(min_length=1, max_length=300)
    known_hosts: str = Field(min_length=1, max_length=300)


class NewPath(BaseModel):
    directory: str = Field(default="", max_length=300)
    storage: str | None = Field(default=None, max_length=40)
    encryption: Literal["none", "builtin"] = "none"
    enabled: bool = True


class PathChange(BaseModel):
    enabled: bool


# ------------------------------------------------------------------ views
def storage_view(row: RemoteStorage) -> dict[str, Any]:
    keys = ("name", "host", "port", "username", "directory", "key_file", "known_hosts")
    return {key: getattr(row, key) for key in keys}


def path_view(session: Session, row: ArchivePath) -> dict[str, Any]:
    storage = session.get(RemoteStorage, row.storage_id) if row.storage_id else None
    return {
        "position": row.position,
        "kind": row.kind.value,
        "directory": row.directory,
        "storage": storage.name if storage else "",
        "encryption": row.encryption.value,
        "enabled": row.enabled,
    }


def router(container: Container) -> APIRouter:
    r = APIRouter(tags=["fax"])
    lists = page_lists(container)

    @r.get(API + "/settings")
    def read_settings(caller: deps.Admin) -> dict[str, Any]:
        """The PBX's fax settings: simultaneous faxes (0: no limit) and the serial number."""
        with deps.unit_of_work(caller.request) as session:
            row = config.get_settings(session, caller.pbx(session))
            return {k: getattr(row, k) for k in SettingsChange.model_fields}

    @r.put(API + "/settings")
    def change_settings(caller: deps.Admin, body: SettingsChange) -> dict[str, Any]:
        """Change the settings given."""
        with deps.unit_of_work(caller.request) as session:
            row = config.update_settings(session, caller.pbx(session), **body.model_dump(exclude_none=True))
            return {k: getattr(row, k) for k in SettingsChange.model_fields}

    @r.get(API + "/storages")
    def list_storages(caller: deps.Admin) -> list[dict[str, Any]]:
        """Remote storages (SFTP) archival paths copy faxes to."""
        with deps.unit_of_work(caller.request) as session:
            return [storage_view(s) for s in config.list_storages(session, caller.pbx(session))]

    @r.post(API + "/storages", status_code=201)
    def add_storage(caller: deps.Admin, body: NewStorage) -> dict[str, Any]:
        """Add a remote storage; its key and known-hosts files are on this server, the key readable by serve only."""
        values = body.model_dump()
        name = values.pop("name")
        values["key_file"], values["known_hosts"] = Path(body.key_file), Path(body.known_hosts)
        with deps.unit_of_work(caller.request) as session:
            return storage_view(config.add_storage(session, caller.pbx(session), name, **values))

    @r.delete(API + "/storages/{name}", status_code=204)
    def remove_storage(caller: deps.Admin, name: str) -> None:
        """Remove a remote storage no archival path uses."""
        with deps.unit_of_work(caller.request) as session:
            config.remove_storage(session, caller.pbx(session), name)

    @r.get(API + "/archive-paths")
    def list_paths(caller: deps.Admin) -> list[dict[str, Any]]:
        """Where every fax is copied, in order."""
        with deps.unit_of_work(caller.request) as session:
            return [path_view(session, p) for p in config.list_archive_paths(session, caller.pbx(session))]

    @r.post(API + "/archive-paths", status_code=201)
    def add_path(caller: deps.Admin, body: NewPath) -> dict[str, Any]:
        """Add an archival path: a local directory or a remote storage."""
        with deps.unit_of_work(caller.request) as session:
            row = config.add_archive_path(
                session,
                caller.pbx(session),
                directory=body.directory.strip(),
                storage=body.storage or "",
                encryption=body.encryption,
                enabled=body.enabled,
            )
            return path_view(session, row)

    @r.patch(API + "/archive-paths/{position}")
    def change_path(caller: deps.Admin, position: int, body: PathChange) -> dict[str, Any]:
        """Enable or disable an archival path."""
        with deps.unit_of_work(caller.request) as session:
            return path_view(
                session, config.set_archive_path_enabled(session, caller.pbx(session), position, body.enabled)
            )

    @r.delete(API + "/archive-paths/{position}", status_code=204)
    def remove_path(caller: deps.Admin, position: int) -> None:
        """Remove an archival path (the later ones move up)."""
        with deps.unit_of_work(caller.request) as session:
            config.remove_archive_path(session, caller.pbx(session), position)

    @r.get("/pbx/{pbx}/admin/fax", include_in_schema=False)
    def settings_page(request: Request, pbx: str) -> Response:
        return records.render(request, pbx, SETTINGS, choices=records.choices(request, pbx, lists))

    @r.get("/pbx/{pbx}/admin/fax-instances", include_in_schema=False)
    def instances_page(request: Request, pbx: str) -> Response:
        return records.render(request, pbx, INSTANCES, choices=records.choices(request, pbx, lists))

    r.include_router(instances_router(container))
    return r
