"""Massive import of rooms from CSV or XLSX.

Every row is tried inside its own savepoint, so all bad rows are found and
reported with their line numbers in one pass; unless ``skip_bad``, any bad
row rolls the whole import back and nothing is imported.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from kalliope_tel import tables
from kalliope_tel.errors import KalliopeError
from kalliope_tel.hotel.exceptions import HotelError, ImportRejected, InvalidValue
from kalliope_tel.hotel.services import create_room
from kalliope_tel.spreadsheets import csv_field, xlsx_append
from kalliope_tel.tenancy.models import Pbx

COLUMNS = [
    "extension",
    "name",
    "template",
    "building",
    "floor",
    "phonebook",
    "ldap_mode",
    "standard_class",
    "restricted_class",
    "calls_limit",
    "busy_level",
    "ring_timeout",
    "accounts",
    "new_accounts",
    "failovers",
]
REQUIRED = ("extension", "template")
EXAMPLE = {
    "extension": "101",
    "name": "Room 101",
    "template": "standard-room",
    "building": "Main",
    "floor": "1",
    "phonebook": "yes",
    "ldap_mode": "",
    "standard_class": "",
    "restricted_class": "",
    "calls_limit": "",
    "busy_level": "",
    "ring_timeout": "",
    "accounts": "",
    "new_accounts": "1",
    "failovers": "noanswer.internal=900;busy.external=hangup",
}
Row = tables.Row


@dataclass
class ImportReport:
    imported: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)
    # The same refusals, to be read in another language (the web's reader's).
    refusals: list[tuple[int, KalliopeError]] = field(default_factory=list)


def read_rows(path: Path) -> list[Row]:
    """The file's data rows with their line numbers (the header is line 1)."""
    return tables.read_table(path, COLUMNS, REQUIRED)


def _row_arguments(row: dict[str, str]) -> dict[str, Any]:
    if "__error__" in row:
        raise InvalidValue(row["__error__"], fields=row["__fields__"], header=row["__header__"])
    for col in REQUIRED:
        if not row.get(col):
            raise InvalidValue("import.column_empty", column=col)
    args: dict[str, Any] = {
        "extension": row["extension"],
        "name": row.get("name", ""),
        "template": row["template"],
    }
    mapping = {
        "building": "organization",
        "floor": "organizational_unit",
        "ldap_mode": "ldap_mode",
        "standard_class": "standard_class",
        "restricted_class": "restricted_class",
    }
    for col, key in mapping.items():
        if row.get(col):
            args[key] = row[col]
    if row.get("phonebook"):
        if row["phonebook"].lower() not in ("yes", "no", "true", "false", "1", "0"):
            raise InvalidValue("import.yes_no", column="phonebook", value=repr(row["phonebook"]))
        args["show_in_phonebook"] = row["phonebook"].lower() in ("yes", "true", "1")
    for col in ("calls_limit", "busy_level", "ring_timeout", "new_accounts"):
        if row.get(col):
            if not row[col].isdigit():
                raise InvalidValue("import.whole_number", column=col, value=repr(row[col]))
            args[col] = int(row[col])
    if row.get("accounts"):
        args["attach"] = [a.strip() for a in row["accounts"].split(";") if a.strip()]
    if row.get("failovers"):
        failovers = {}
        for pair in row["failovers"].split(";"):
            key, sep, dest = pair.partition("=")
            if not sep:
                raise InvalidValue("import.failover", pair=repr(pair))
            failovers[key.strip()] = dest.strip()
        args["failovers"] = failovers
    return args


def import_rooms(
    session: Session,
    pbx: Pbx,
    rows: list[Row],
    *,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    if not rows:
        raise InvalidValue("import.no_rows")
    seen: dict[str, int] = {}
    for done, (line, row) in enumerate(rows, start=1):
        ext = row.get("extension", "")
        try:
            if ext in seen:
                raise InvalidValue("import.duplicate", room=ext, line=seen[ext])
            args = _row_arguments(row)
            with session.begin_nested():
                created = create_room(session, pbx, **args)
            seen[ext] = line
            report.imported += 1
            report.credentials.update(created.new_credentials)
        except (HotelError, KalliopeError) as exc:
            report.skipped.append((line, str(exc)))
            report.refusals.append((line, exc))
        if progress is not None:
            progress(done)
    if report.skipped and not skip_bad:
        raise ImportRejected(report.skipped)
    return report


def write_template(path: Path) -> None:
    """The import template: header and one example row, as CSV or XLSX."""
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerow({key: csv_field(value) for key, value in EXAMPLE.items()})
        return
    if path.suffix.lower() != ".xlsx":
        raise InvalidValue("import.kind", file=path.name)
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "rooms"
    xlsx_append(sheet, COLUMNS)
    xlsx_append(sheet, [EXAMPLE[c] for c in COLUMNS])
    book.save(path)
