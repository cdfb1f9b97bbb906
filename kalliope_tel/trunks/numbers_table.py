"""A PBX's numbers as CSV: export, and an import that is all or nothing
(every row is tried; when any is refused nothing is written and every
refusal is named by its line, overlaps with the number they collide with,
in the store or earlier in the file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from kalliope_tel import tables
from kalliope_tel.errors import KalliopeError
from kalliope_tel.oplog.services import Actor, record
from kalliope_tel.spreadsheets import csv_table, unquote
from kalliope_tel.tables import ImportRefused
from kalliope_tel.tenancy.models import Company, Pbx
from kalliope_tel.trunks import numbers as service
from kalliope_tel.trunks.exceptions import InvalidValue
from kalliope_tel.trunks.models import PhoneNumber, trunks_serving

COLUMNS = ["number", "type", "trunk"]
EXPORT_ONLY = ["block", "carrier", "status"]
MAX_ROWS = 20_000
MAX_BYTES = 2 * 1024 * 1024  # 20,000 rows of a number, a type and a trunk fit many times over


def export(session: Session, pbx: Pbx) -> str:
    rows = [{**r, "trunk": r["trunk_id"]} for r in service.list_numbers(session, pbx)]
    return csv_table(COLUMNS + EXPORT_ONLY, rows)


def _trunks(session: Session, pbx: Pbx) -> dict[str, int]:
    """The trunks serving the PBX, by id and by description (a description
    two of them share is refused when used: say the id)."""
    by_name: dict[str, int] = {}
    for trunk in trunks_serving(session, pbx):
        by_name[str(trunk.id)] = trunk.id
        key = trunk.description.lower()
        by_name[key] = -1 if key in by_name else trunk.id
    return by_name


def _row(values: dict[str, str], trunks: dict[str, int]) -> tuple[str, int, int]:
    if "__error__" in values:
        raise InvalidValue(values["__error__"], fields=values["__fields__"], header=values["__header__"])
    values = {k: unquote(v).strip() for k, v in values.items()}
    kind = values.get("type", "") or "0"
    if kind not in {"0", "1", "2", "3"}:
        raise InvalidValue("numbers.type_form", value=kind[:10])
    trunk = trunks.get(values.get("trunk", "").lower())
    if trunk is None or trunk < 0:
        raise InvalidValue("numbers.csv_trunk", trunk=values.get("trunk", "")[:60])
    return values.get("number", ""), int(kind), trunk


def import_file(
    session: Session, actor: Actor, company: Company, pbx: Pbx, path: Path, *, dry_run: bool = False
) -> dict[str, Any]:
    if path.stat().st_size > MAX_BYTES:  # bounded before a byte is read
        raise ImportRefused("csv.too_large", limit=MAX_BYTES >> 10)
    rows = tables.read_table(path, COLUMNS + EXPORT_ONLY, ("number",))
    if not rows:
        raise ImportRefused("import.no_rows")
    if len(rows) > MAX_ROWS:
        raise ImportRefused("extension.import_rows", limit=MAX_ROWS)
    trunks = _trunks(session, pbx)
    service.serialise(session)  # the whole import checks and writes in one turn
    errors: list[tuple[int, str, KalliopeError]] = []
    wanted: list[tuple[int, str, int, int]] = []
    lengths: dict[int, service.Blocks] = {}
    for line, values in rows:
        try:
            number, digits, trunk = _row(values, trunks)
            number, digits = service.check_number(number, digits)
            blocks = lengths.get(len(number)) or lengths.setdefault(
                len(number), service.blocks_of_length(session, len(number))
            )
            other = blocks.collision(number, digits)
            if other is not None:
                raise InvalidValue("numbers.overlap", number=service.block_label(number, digits), other=other)
        except KalliopeError as exc:
            errors.append((line, "number", exc))
            continue
        blocks.add(number, digits)  # a later row that overlaps this one is named too
        wanted.append((line, number, digits, trunk))
    if errors:
        raise ImportRefused("csv.rows_refused", errors, count=len(errors))
    if not dry_run:  # checked above: written in one flush, not a query and a flush a row
        session.add_all(PhoneNumber(pbx_id=pbx.id, trunk_id=trunk, number=number, digits=digits)
                        for _line, number, digits, trunk in wanted)  # fmt: skip
        session.flush()
        record(session, actor, "log.numbers_imported", "number", f"{pbx.slug} ({len(wanted)})",
               company_id=company.id, after={"created": len(wanted)})  # fmt: skip
    return {"dry_run": dry_run, "created": 0 if dry_run else len(wanted), "rows": len(wanted)}
