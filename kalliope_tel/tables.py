"""Tables from outside (an administrator's CSV or XLSX file): read into
rows with their line numbers, the header checked against the columns the
importer knows. A spreadsheet's zip directory is checked before it is
opened (a zip bomb is refused, ``archives``); callers bound the upload's
size before it is written to the file read here.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kalliope_tel import archives
from kalliope_tel.errors import KalliopeError
from kalliope_tel.extensions.exceptions import InvalidValue

Row = tuple[int, dict[str, str]]


class ImportRefused(KalliopeError):
    """The file as a whole, or its rows: ``items`` holds (line, column, error) for each."""

    def __init__(self, code: str, items: list[tuple[int, str, KalliopeError]] | None = None, **params: Any) -> None:
        super().__init__(code, **params)
        self.items = items or []


def read_table(path: Path, columns: Sequence[str], required: Sequence[str]) -> list[Row]:
    """The file's data rows with their line numbers (the header is line 1),
    each a dict of the named ``columns`` (an unknown or missing required
    column refuses the whole file, naming them)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, columns, required)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, columns, required)
    raise InvalidValue("import.kind", file=path.name)


def _normalise_header(header: list[str], source: str, columns: Sequence[str], required: Sequence[str]) -> list[str]:
    names = [str(h or "").strip().lower().replace(" ", "_") for h in header]
    unknown = [n for n in names if n and n not in columns]
    if unknown:
        raise InvalidValue("import.unknown_columns", file=source, columns=unknown, expected=list(columns))
    missing = [c for c in required if c not in names]
    if missing:
        raise InvalidValue("import.missing_columns", file=source, columns=missing)
    return names


def _read_csv(path: Path, columns: Sequence[str], required: Sequence[str]) -> list[Row]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidValue("import.not_utf8", file=path.name) from None
    if not text.strip():
        raise InvalidValue("import.empty", file=path.name)
    try:
        dialect: Any = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = _normalise_header(next(reader), path.name, columns, required)
    rows = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            rows.append(
                (line, {"__error__": "import.fields", "__fields__": str(len(values)), "__header__": str(len(header))})
            )
            continue
        rows.append((line, {k: v.strip() for k, v in zip(header, values, strict=False) if k}))
    return rows


def _read_xlsx(path: Path, columns: Sequence[str], required: Sequence[str]) -> list[Row]:
    import openpyxl

    # The directory first: a spreadsheet from outside may be a zip bomb.
    try:
        with zipfile.ZipFile(path) as archive:
            refusal = archives.zip_refusal(archive)
    except zipfile.BadZipFile:
        refusal = None  # openpyxl says so below, with the file's name
    if refusal is not None:
        code, params = refusal
        raise InvalidValue(code, **params)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InvalidValue("import.bad_xlsx", file=path.name, reason=type(exc).__name__) from None
    sheet = book.worksheets[0]
    iterator = sheet.iter_rows(values_only=True)
    try:
        header = _normalise_header(
            [str(h) if h is not None else "" for h in next(iterator)], path.name, columns, required
        )
    except StopIteration:
        raise InvalidValue("import.empty", file=path.name) from None
    rows = []
    for line, values in enumerate(iterator, start=2):
        cells = [
            "" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)) for v in values
        ]
        if not any(c.strip() for c in cells):
            continue
        rows.append((line, {k: v.strip() for k, v in zip(header, cells, strict=False) if k}))
    book.close()
    return rows
