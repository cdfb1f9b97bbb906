"""Text that goes into a spreadsheet a person opens: never a formula.

A guest who checks in as ``=HYPERLINK("http://x","y")`` must not become a
live link (or a DDE command) in the stay's report. Spreadsheet programs read
a CSV field or a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
in some, a tab or carriage return) as a formula. Every export of the
project writes its text through here:

- CSV: such a field gets a leading apostrophe (the usual defence: Excel and
  LibreOffice show the text, not a formula); ``unquote`` takes it off again
  where the project reads its own exports back;
- XLSX: the cell is typed as a string (openpyxl would otherwise store a
  leading ``=`` as a formula), so its text stays exactly as written.

Numbers are left alone, signs and all (``-2.50``, ``+39 06 1234``): they
cannot carry a formula and a report must keep them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[\d .,]*")


def dangerous(text: str) -> bool:
    return text.startswith(_TRIGGERS) and _PLAIN_NUMBER.fullmatch(text) is None


def csv_field(value: Any) -> Any:
    """``value`` as a CSV field that no spreadsheet evaluates."""
    if isinstance(value, str) and dangerous(value):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_field(v) for v in values]


def csv_table(columns: list[str], rows: Iterable[dict[str, Any]]) -> str:
    """A header of ``columns``, then each row's values in that order, as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(csv_row(row[c] for c in columns) for row in rows)
    return out.getvalue()


def unquote(text: str) -> str:
    """A field of one of our CSV exports as it was before ``csv_field``."""
    if text.startswith("'") and dangerous(text[1:]):
        return text[1:]
    return text


def xlsx_append(sheet: Any, values: Iterable[Any]) -> None:
    """``sheet.append(values)``, with every text cell typed as text."""
    row = list(values)
    sheet.append(row)
    for cell, value in zip(sheet[sheet.max_row], row, strict=False):
        if isinstance(value, str) and value:
            cell.value = value
            cell.data_type = "s"  # what openpyxl writes as a shared string, never a formula
