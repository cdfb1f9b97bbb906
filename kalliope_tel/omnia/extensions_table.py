"""Extensions of a PBX as a spreadsheet: CSV export, and an import (CSV or
XLSX) that is all or nothing: every row is tried, each in its own
savepoint, and when any is refused nothing is written and every refusal is
named by its line. Passwords are never in the file: each new extension's
SIP password is generated and returned once, with the import's report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from kalliope_tel import tables
from kalliope_tel.errors import KalliopeError
from kalliope_tel.extensions import services as extensions
from kalliope_tel.extensions.exceptions import InvalidValue
from kalliope_tel.extensions.models import Licence
from kalliope_tel.omnia import manager
from kalliope_tel.oplog.services import Actor, record
from kalliope_tel.spreadsheets import csv_table, unquote
from kalliope_tel.tables import ImportRefused
from kalliope_tel.tenancy.models import Company, Pbx

COLUMNS = ["number", "name", "licence", "pin", "email", "first_name", "last_name", "user"]
EXPORT_ONLY = ["meeting_id", "status"]
REQUIRED = ("number",)
MAX_BYTES = 4 * 1024 * 1024
MAX_ROWS = 20_000


@dataclass
class Report:
    created: int = 0
    dry_run: bool = False
    credentials: dict[str, str] = field(default_factory=dict)  # SIP login -> password, shown once

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "created": self.created, "credentials": self.credentials}


def export(session: Session, pbx: Pbx) -> str:
    columns = ["number", "name", "licence", "email", "first_name", "last_name", "user", *EXPORT_ONLY]
    return csv_table(columns, manager.list_extensions(session, pbx))


def _arguments(values: dict[str, str], site: str, lang: str) -> dict[str, Any]:
    if "__error__" in values:
        raise InvalidValue(values["__error__"], fields=values["__fields__"], header=values["__header__"])
    values = {k: unquote(v) for k, v in values.items()}
    if not values.get("number"):
        raise InvalidValue("import.column_empty", column="number")
    licence_text = (values.get("licence") or "start").lower()
    if licence_text not in {licence.value for licence in Licence}:
        raise InvalidValue("extension.licence_form", value=licence_text)
    user: str | manager.NewUser | None = values.get("user") or None
    if values.get("email"):
        user = manager.NewUser(values["email"], values.get("first_name", ""), values.get("last_name", ""), site, lang)
    return {
        "number": values["number"],
        "name": values.get("name", ""),
        "licence": Licence(licence_text),
        "pin": values.get("pin") or None,
        "user": user,
    }


def import_file(
    session: Session,
    actor: Actor,
    company: Company,
    pbx: Pbx,
    path: Path,
    *,
    dry_run: bool = False,
    site: str = "",
    lang: str = "en",
) -> Report:
    """Create the file's extensions, all or none (``ImportRefused`` with each line's reason)."""
    rows = tables.read_table(path, COLUMNS + EXPORT_ONLY, REQUIRED)
    if not rows:
        raise ImportRefused("import.no_rows")
    if len(rows) > MAX_ROWS:
        raise ImportRefused("extension.import_rows", limit=MAX_ROWS)
    errors: list[tuple[int, str, KalliopeError]] = []
    report = Report(dry_run=dry_run)
    seen: dict[str, int] = {}
    outer = session.begin_nested()
    for line, values in rows:
        number = values.get("number", "")
        if number in seen:
            errors.append((line, "number", InvalidValue("extension.duplicate", number=number, line=seen[number])))
            continue
        seen[number] = line
        savepoint = session.begin_nested()
        try:
            arguments = _with_user(session, pbx, _arguments(values, site, lang))
            created = extensions.create_extension(session, pbx, **arguments)
            manager.personal_room(session, pbx, created.extension)
        except KalliopeError as exc:
            savepoint.rollback()
            errors.append((line, str(exc.params.get("setting", "")), exc))
            continue
        savepoint.commit()
        report.created += 1
        report.credentials.update(created.credentials)
    if errors or dry_run:
        outer.rollback()
        if errors:
            raise ImportRefused("csv.rows_refused", errors, count=len(errors))
        report.credentials = {}
        return report
    outer.commit()
    record(session, actor, "log.extensions_imported", "extension", f"{pbx.slug} ({report.created})",
           company_id=company.id, after={"created": report.created, "numbers": sorted(seen)[:50]})  # fmt: skip
    return report


def _with_user(session: Session, pbx: Pbx, arguments: dict[str, Any]) -> dict[str, Any]:
    user = arguments.pop("user")
    arguments["user_id"] = manager.user_for(session, pbx, user, arguments["number"])
    return arguments
