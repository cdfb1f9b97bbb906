"""What billing shows: call lists, a room's cost since check-in, and the
calls report of a stay (XLSX, written with openpyxl, and its CSV twin).

A guest's report lists the answered outbound calls of the stay: those are
what costs. A call no rule priced is listed as "not priced" and the total
says it is incomplete, rather than counting it as free.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kalliope_tel.billing.models import CallRecord, Direction
from kalliope_tel.billing.rating import format_amount
from kalliope_tel.errors import KalliopeError
from kalliope_tel.hotel.models import Room, Stay
from kalliope_tel.hotel.stays import current_stay
from kalliope_tel.spreadsheets import csv_row, xlsx_append
from kalliope_tel.tenancy.models import Pbx

NOT_PRICED = "not priced"


class StayNotFound(KalliopeError):
    pass


def unpriced_count(session: Session) -> int:
    return (
        session.scalar(
            select(func.count(CallRecord.id)).where(
                CallRecord.direction == Direction.OUTBOUND, CallRecord.cost.is_(None)
            )
        )
        or 0
    )


def calls(
    session: Session,
    pbx: Pbx,
    *,
    extension: str | None = None,
    stay_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    unpriced: bool = False,
    limit: int | None = None,
) -> list[CallRecord]:
    query = select(CallRecord).where(CallRecord.pbx_id == pbx.id)
    if extension is not None:
        query = query.where(CallRecord.extension == extension)
    if stay_id is not None:
        query = query.where(CallRecord.stay_id == stay_id)
    if since is not None:
        query = query.where(CallRecord.start_at >= since)
    if until is not None:
        query = query.where(CallRecord.start_at < until)
    if unpriced:
        query = query.where(CallRecord.direction == Direction.OUTBOUND, CallRecord.cost.is_(None))
    query = query.order_by(CallRecord.start_at, CallRecord.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def billable(records: list[CallRecord]) -> list[CallRecord]:
    return [r for r in records if r.direction is Direction.OUTBOUND and r.disposition == "ANSWERED"]


@dataclass
class Totals:
    """Sums by currency, and how many calls have no price."""

    by_currency: dict[str, int] = field(default_factory=dict)
    unpriced: int = 0

    @classmethod
    def of(cls, records: list[CallRecord]) -> Totals:
        totals = cls()
        for r in records:
            if r.cost is None:
                totals.unpriced += 1
            else:
                totals.by_currency[r.currency] = totals.by_currency.get(r.currency, 0) + r.cost
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {"total": {c: format_amount(v) for c, v in sorted(self.by_currency.items())}, "unpriced": self.unpriced}


def call_view(r: CallRecord, tz: str) -> dict[str, Any]:
    local = r.start_at.astimezone(ZoneInfo(tz))
    return {
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M:%S"),
        "extension": r.extension,
        "number": r.dialled,
        "line": r.line,
        "direction": r.direction.value,
        "disposition": r.disposition,
        "duration": r.billsec,
        "billed_seconds": r.billed_seconds,
        "cost": None if r.cost is None else format_amount(r.cost),
        "currency": r.currency,
        "profile": r.profile_name,
        "rule": r.rule_key,
        "unpriced": r.unpriced,
        "stay": r.stay_id,
        "uniqueid": r.uniqueid,
        "linkedid": r.linkedid,
        "recorded_by": r.recorded_by,
        "source": r.source,
    }


@dataclass
class RoomCost:
    extension: str
    stay: Stay
    calls: list[CallRecord]
    totals: Totals


def room_cost(session: Session, pbx: Pbx, extension: str) -> RoomCost:
    """The calls of the room's current stay (since check-in) and their sum."""
    stay = current_stay(session, pbx, extension)
    records = billable(calls(session, pbx, stay_id=stay.id))
    return RoomCost(extension, stay, records, Totals.of(records))


def occupied_costs(session: Session, pbx: Pbx) -> dict[str, Totals]:
    """Every occupied room's cost since check-in, in one query (the panel's)."""
    rows = session.execute(
        select(Room.extension, CallRecord)
        .join(Stay, Stay.room_id == Room.id)
        .join(CallRecord, CallRecord.stay_id == Stay.id)
        .where(Room.pbx_id == pbx.id, Stay.checkout_at.is_(None))
    ).all()
    grouped: dict[str, list[CallRecord]] = {}
    for extension, record in rows:
        grouped.setdefault(extension, []).append(record)
    return {ext: Totals.of(billable(records)) for ext, records in grouped.items()}


@dataclass
class StayReport:
    stay: Stay
    calls: list[CallRecord]
    totals: Totals
    tz: str

    HEADER = ("Date", "Time", "Number", "Line", "Duration (s)", "Cost", "Currency")

    def rows(self) -> list[list[Any]]:
        out: list[list[Any]] = []
        for r in self.calls:
            view = call_view(r, self.tz)
            out.append(
                [
                    view["date"],
                    view["time"],
                    r.dialled,
                    r.line,
                    r.billsec,
                    NOT_PRICED if r.cost is None else view["cost"],
                    r.currency,
                ]
            )
        return out

    def title(self) -> list[list[str]]:
        local = ZoneInfo(self.tz)
        out = self.stay.checkout_at.astimezone(local).strftime("%Y-%m-%d %H:%M") if self.stay.checkout_at else ""
        names = ", ".join([self.stay.owner, *self.stay.guests])
        return [
            ["Room", self.stay.room_extension],
            ["Guests", names],
            ["Check-in", self.stay.checkin_at.astimezone(local).strftime("%Y-%m-%d %H:%M")],
            ["Check-out", out or "(still in the room)"],
        ]


def stay_report(session: Session, pbx: Pbx, stay_id: int) -> StayReport:
    stay = session.get(Stay, stay_id)
    if stay is None or stay.pbx_id != pbx.id:
        raise StayNotFound("billing.no_stay", id=stay_id, pbx=pbx.slug)
    records = billable(calls(session, pbx, stay_id=stay.id))
    return StayReport(stay, records, Totals.of(records), pbx.timezone)


def write_csv(report: StayReport, path: Path) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(report.HEADER)
    writer.writerows(csv_row(row) for row in report.rows())
    for currency, value in sorted(report.totals.by_currency.items()):
        writer.writerow(["Total", "", "", "", "", format_amount(value), currency])
    if report.totals.unpriced:
        writer.writerow(["Total incomplete", "", "", "", "", f"{report.totals.unpriced} call(s) {NOT_PRICED}", ""])
    _write(path, out.getvalue().encode())


def write_xlsx(report: StayReport, path: Path) -> None:
    from decimal import Decimal

    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has its sheet
    sheet.title = f"Room {report.stay.room_extension}"[:31]
    for label, value in report.title():
        xlsx_append(sheet, [label, value])
        sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
    sheet.append([])
    sheet.append(list(report.HEADER))
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for row in report.rows():
        # Costs as numbers (spreadsheets sum them), four decimals shown as two+.
        row[5] = row[5] if row[5] == NOT_PRICED else Decimal(row[5])
        xlsx_append(sheet, row)
        if row[5] != NOT_PRICED:
            sheet.cell(row=sheet.max_row, column=6).number_format = "0.00##"
    for currency, total in sorted(report.totals.by_currency.items()):
        sheet.append(["Total", "", "", "", "", Decimal(format_amount(total)), currency])
        sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
        sheet.cell(row=sheet.max_row, column=6).number_format = "0.00##"
    if report.totals.unpriced:
        sheet.append(["Total incomplete", "", "", "", "", f"{report.totals.unpriced} call(s) {NOT_PRICED}", ""])
    for column, width in zip("ABCDEFG", (12, 10, 18, 14, 13, 12, 9), strict=True):
        sheet.column_dimensions[column].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    _write(path, buffer.getvalue())


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a report is never left half written."""
    from kalliope_tel.files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
