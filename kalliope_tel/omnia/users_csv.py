"""Users of a company as CSV: export, and an import that checks every row
first and writes nothing when any row is wrong (each error named by line
and column), with a dry run that reports the same without writing.

Columns are read by their header names, in any order; unknown columns are
refused (a typo would silently drop a field). The export's own columns
(status, created_at) are accepted and ignored, so an export imports again
unchanged. A row whose address is already a user of the company updates
that user; a new address is invited.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from kalliope_tel.accounts import services as accounts
from kalliope_tel.accounts.models import ConsoleRole, ManagerRole
from kalliope_tel.errors import KalliopeError
from kalliope_tel.omnia import console
from kalliope_tel.oplog.services import Actor
from kalliope_tel.spreadsheets import csv_table, unquote
from kalliope_tel.tables import ImportRefused
from kalliope_tel.tenancy.models import Company

COLUMNS = ["email", "first_name", "last_name", "department", "console_role", "manager_role", "manage_customers"]
EXPORT_ONLY = ["status", "created_at"]
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
_YES = {"1", "true", "yes", "si", "sì", "y", "x"}
_NO = {"", "0", "false", "no", "n"}


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    fields: dict[str, Any]


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "created": len(self.created), "updated": len(self.updated),
                "unchanged": len(self.unchanged)}  # fmt: skip


def export(session: Session, company: Company) -> str:
    rows = []
    for account, member in console.accounts_of(session, company.id):
        row = console.member_fields(account, member)
        row["manage_customers"] = "yes" if row["manage_customers"] else "no"
        rows.append(row)
    return csv_table(COLUMNS + EXPORT_ONLY, rows)


def import_users(
    session: Session, actor: Actor, company: Company, text: str, *, dry_run: bool, site: str, lang: str
) -> Report:
    rows, errors = _parse(text)
    plans = []
    reach = {company.id} | ({company.parent_id} if company.parent_id else set())
    for row in rows:
        try:
            plans.append((row, _plan(session, company, reach, row)))
        except _RowError as exc:
            errors.append((row.line, exc.column, exc.error))
    if errors:
        raise ImportRefused("csv.rows_refused", sorted(errors, key=lambda e: e[0]), count=len(errors))
    report = Report(dry_run=dry_run)
    for row, kind in plans:
        getattr(report, kind).append(row.email)
        if dry_run or kind == "unchanged":
            continue
        if kind == "created":
            console.invite(session, actor, company, email=row.email, **row.fields, site=site, lang=lang)
        else:
            account, member = _member(session, company, row.email)
            console.update_member(session, actor, company, account, member, **row.fields)
    return report


class _RowError(Exception):
    def __init__(self, column: str, error: KalliopeError) -> None:
        self.column, self.error = column, error


def _parse(text: str) -> tuple[list[Row], list[tuple[int, str, KalliopeError]]]:
    """The rows that read well, and what is wrong with the others."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    if "email" not in header:
        raise ImportRefused("csv.no_email_column")
    unknown = [h for h in header if h not in COLUMNS + EXPORT_ONLY]
    if unknown:
        raise ImportRefused("csv.unknown_columns", columns=", ".join(unknown))
    reader.fieldnames = header
    rows: list[Row] = []
    seen: dict[str, int] = {}
    errors: list[tuple[int, str, KalliopeError]] = []
    for number, raw in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            raise ImportRefused("csv.too_many_rows", limit=MAX_ROWS)
        values = {k: unquote((v or "").strip()) for k, v in raw.items() if k in COLUMNS}
        if not any(values.values()):
            continue  # a blank line
        try:
            row = _row(number, values)
        except _RowError as exc:
            errors.append((number, exc.column, exc.error))
            continue
        if row.email in seen:
            errors.append((number, "email", KalliopeError("csv.duplicate", email=row.email, first=seen[row.email])))
            continue
        seen[row.email] = number
        rows.append(row)
    return rows, errors


def _row(line: int, values: dict[str, str]) -> Row:
    def checked(column: str, check: Any) -> Any:
        try:
            return check(values.get(column, ""))
        except accounts.AccountError as exc:
            raise _RowError(column, exc) from None
        except ValueError:
            raise _RowError(column, KalliopeError("csv.bad_value", value=values.get(column, "")[:40])) from None

    email = checked("email", accounts.check_email)
    fields = {
        "first_name": checked("first_name", lambda v: accounts.check_name_part(v, "first_name")),
        "last_name": checked("last_name", lambda v: accounts.check_name_part(v, "last_name")),
        "department": checked("department", lambda v: _department(v)),
        "console": checked("console_role", lambda v: ConsoleRole(v) if v else None),
        "manager": checked("manager_role", lambda v: ManagerRole(v) if v else None),
        "manage_customers": checked("manage_customers", _flag),
    }
    return Row(line, email, fields)


def _department(value: str) -> str:
    if len(value) > 80 or any(ord(c) < 32 for c in value):
        raise accounts.AccountError("account.bad_department", limit=80)
    return value


def _flag(value: str) -> bool:
    if value.lower() in _YES:
        return True
    if value.lower() in _NO:
        return False
    raise ValueError(value)


def _member(session: Session, company: Company, email: str) -> Any:
    account = accounts.find_account(session, email)
    member = accounts.membership(session, account.id, company.id) if account else None
    return (account, member) if member is not None else None


def _plan(session: Session, company: Company, reach: set[int], row: Row) -> str:
    """What the row will do: "created", "updated" or "unchanged" (refused with its column)."""
    if row.fields["manage_customers"] and company.parent_id is not None:
        raise _RowError("manage_customers", accounts.AccountError("account.customers_of_customer"))
    found = _member(session, company, row.email)
    if found is None:
        account = accounts.find_account(session, row.email)
        if account is not None and not accounts.within(session, account.id, reach):
            raise _RowError("email", accounts.AccountError("user.email_taken", email=row.email))
        return "created"
    account, member = found
    now = console.member_fields(account, member)
    wanted = {
        "first_name": row.fields["first_name"], "last_name": row.fields["last_name"],
        "department": row.fields["department"], "manage_customers": row.fields["manage_customers"],
        "console_role": row.fields["console"].value if row.fields["console"] else "",
        "manager_role": row.fields["manager"].value if row.fields["manager"] else "",
    }  # fmt: skip
    return "unchanged" if all(now[k] == v for k, v in wanted.items()) else "updated"
