"""Billing in the store, on SQLite and PostgreSQL: profiles and rules
(duplicates refused with the reason, CSV import all or nothing, export
round trip), call records written once whatever offers them, pricing with
the rule kept, unmatched numbers recorded unpriced, rooms' costs since
check-in, the stay report, and the CDR file reconciler (partial lines,
rotation, bad lines)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kalliope_tel.billing import profiles, reports
from kalliope_tel.billing.cdrfile import reconcile
from kalliope_tel.billing.models import CallRecord, CdrCursor, CostProfile
from kalliope_tel.billing.profiles import RuleInput
from kalliope_tel.billing.rating import RuleConflict
from kalliope_tel.billing.records import BadCdr, Rater, is_ours, parse, record
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.hotel import services, stays
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import create_pbx, get_pbx
from tests.billing_support import seed_billing_hotel

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC).timestamp()


def cdr(uniqueid: str, dialled: str, talk: float, **over: Any) -> dict[str, Any]:
    """A CDR line as asterisk-conf/cdr_custom.conf writes it."""
    start = over.pop("start", T0)
    fields = {
        "uniqueid": uniqueid,
        "linkedid": uniqueid,
        "sequence": int(uniqueid.split(".")[1]),
        "channel": "PJSIP/101-00000001",
        "dstchannel": "PJSIP/lab-trunk-0000000a",
        "lastapp": "Dial",
        "disposition": "ANSWERED" if talk else "NO ANSWER",
        "start": start,
        "answer": start + 2 if talk else 0.0,
        "end": start + 2 + talk,
        "duration": int(2 + talk),
        "billsec": int(talk),
        "kt_pbx": "default",
        "kt_from": "101",
        "kt_dialled": dialled,
        "kt_out": "standard",
        "kt_line": "",
    }
    fields.update(over)
    return fields


@pytest.fixture
def container(fresh_db_url: str) -> Iterator[Container]:
    box = Container(Settings(database_url=fresh_db_url))
    migrate.upgrade(box.engine)
    with transaction(box.sessions) as session:
        seed_billing_hotel(session, extra_rules=[RuleInput("prefix", "0612", "0", "0.30", 1, 1)])
    yield box
    box.close()


def work(container: Container, job: Any) -> Any:
    with transaction(container.sessions) as session:
        return job(session, get_pbx(session))


def records(container: Container) -> list[CallRecord]:
    with transaction(container.sessions) as session:
        return list(session.scalars(select(CallRecord).order_by(CallRecord.start_at, CallRecord.id)))


# ------------------------------------------------------------------ profiles
def test_duplicate_rules_are_refused_with_the_reason_and_nothing_changes(container: Container) -> None:
    def duplicate(session: Session, pbx: Pbx) -> None:
        lab = profiles.get_profile(session, pbx, "lab")
        profiles.add_rules(
            session, pbx, lab, [RuleInput("exact", "0611", "0", "1"), RuleInput("prefix", "06", "0", "9")]
        )

    with pytest.raises(RuleConflict, match="already has a rule for prefix 06"):
        work(container, duplicate)
    with pytest.raises(RuleConflict, match="rule 2: first increment: 1 to 3600 seconds"):
        work(
            container,
            lambda s, p: profiles.add_rules(
                s,
                p,
                profiles.get_profile(s, p, "lab"),
                [RuleInput("other"), RuleInput("exact", "1", first_increment=0)],
            ),
        )
    with pytest.raises(RuleConflict, match="priced in EUR"):
        work(
            container,
            lambda s, p: profiles.add_rules(
                s, p, profiles.get_profile(s, p, "lab"), [RuleInput("other", currency="USD")]
            ),
        )
    with pytest.raises(profiles.ProfileError, match="already prices line 'lab-trunk'"):
        work(container, lambda s, p: profiles.create_profile(s, p, "again", line="lab-trunk"))
    # All or nothing: the exact 0611 of the refused batch was not written.
    keys = work(
        container,
        lambda s, p: [(r.match.value, r.digits) for r in profiles.rules_of(s, profiles.get_profile(s, p, "lab"))],
    )
    assert keys == [("exact", "112"), ("prefix", "06"), ("prefix", "0612")]


def test_csv_export_import_round_trip_and_a_bad_line_named(container: Container) -> None:
    text = work(container, lambda s, p: profiles.export_csv(s, profiles.get_profile(s, p, "lab")))
    assert text.splitlines()[0] == ",".join(profiles.CSV_COLUMNS)
    assert "prefix,06,0.0500,0.1200,30,6,0.0000,EUR," in text
    work(container, lambda s, p: profiles.create_profile(s, p, "copy", line="other-trunk"))
    imported = work(
        container, lambda s, p: len(profiles.import_csv(s, p, profiles.get_profile(s, p, "copy"), text, replace=False))
    )
    assert imported == 3
    again = work(container, lambda s, p: profiles.export_csv(s, profiles.get_profile(s, p, "copy")))
    assert again == text
    # A spreadsheet's semicolons and decimal commas; a duplicate on line 4 refuses the whole file.
    sheet = (
        "match;digits;per_minute;first_increment;next_increment\n"
        "prefix;39;0,10;60;60\nother;;0,50;60;60\nprefix;39;0,20;1;1\n"
    )
    with pytest.raises(RuleConflict, match=r"CSV line 4: a second rule for prefix 39 \(first on line 2\)"):
        work(container, lambda s, p: profiles.import_csv(s, p, profiles.get_profile(s, p, "copy"), sheet, replace=True))
    assert work(container, lambda s, p: len(profiles.rules_of(s, profiles.get_profile(s, p, "copy")))) == 3
    replaced = work(
        container,
        lambda s, p: len(
            profiles.import_csv(
                s, p, profiles.get_profile(s, p, "copy"), sheet.rsplit("prefix;39;0,20", 1)[0], replace=True
            )
        ),
    )
    assert replaced == 2
    with pytest.raises(RuleConflict, match=r"CSV line 2: .*not a number"):
        work(
            container,
            lambda s, p: profiles.import_csv(
                s, p, profiles.get_profile(s, p, "copy"), "match,digits,per_minute\nexact,12a,1\n", replace=False
            ),
        )


FORMULA = '=HYPERLINK("http://x","y")'


def test_a_guest_or_description_that_looks_like_a_formula_stays_text(container: Container, tmp_path: Path) -> None:
    """A guest named like a formula is text in the stay's XLSX; a rule's
    description so written is quoted in the CSV export and read back as it was."""
    stay_id = work(
        container, lambda s, p: stays.check_in(s, p, "101", FORMULA, guests=["@SUM(1+1)*cmd|' /C calc'!A0"]).id
    )
    work(container, lambda s, p: stays.check_out(s, p, "101"))
    report = work(container, lambda s, p: reports.stay_report(s, p, stay_id))
    reports.write_xlsx(report, tmp_path / "stay.xlsx")
    sheet = load_workbook(tmp_path / "stay.xlsx").active
    assert sheet is not None
    guests = sheet.cell(row=2, column=2)
    assert (guests.data_type, guests.value) == ("s", FORMULA + ", @SUM(1+1)*cmd|' /C calc'!A0")
    # The control: openpyxl makes such a string a formula when nothing stops it.
    from openpyxl import Workbook

    plain = Workbook().active
    assert plain is not None
    plain.append([FORMULA])
    assert plain.cell(row=1, column=1).data_type == "f"

    def describe(session: Session, pbx: Pbx) -> None:
        profiles.add_rules(session, pbx, profiles.get_profile(session, pbx, "lab"),
                           [RuleInput("exact", "0699", "0", "1", description=FORMULA),
                            RuleInput("exact", "0698", "0", "1", description="-2.50")])  # fmt: skip

    work(container, describe)
    text = work(container, lambda s, p: profiles.export_csv(s, profiles.get_profile(s, p, "lab")))
    line = next(row for row in text.splitlines() if ",0699," in row)
    assert line.endswith(',"\'=HYPERLINK(""http://x"",""y"")"'), line
    assert next(row for row in text.splitlines() if ",0698," in row).endswith(",-2.50")  # a number stays a number
    work(container, lambda s, p: profiles.create_profile(s, p, "copy", line="other-trunk"))
    work(container, lambda s, p: profiles.import_csv(s, p, profiles.get_profile(s, p, "copy"), text, replace=False))
    described = work(
        container,
        lambda s, p: {r.digits: r.description for r in profiles.rules_of(s, profiles.get_profile(s, p, "copy"))},
    )
    assert described["0699"] == FORMULA


# ------------------------------------------------------------------ records
def test_a_cdr_is_recorded_once_priced_with_its_rule(container: Container) -> None:
    rater = Rater()
    fields = cdr("1795940000.11", "0645678901", 7.2)
    wrote = [
        work(container, lambda s, p, src=source: record(s, "", parse(fields), source=src, node="n1", rater=rater))
        for source in ("ami", "file", "ami")
    ]
    assert wrote == [True, False, False]  # the first offer writes it, later ones are no-ops
    (row,) = records(container)
    assert row.source == "ami" and row.line == "lab-trunk" and row.billsec == 8  # 7.2 s of talk, rounded up
    # prefix 06: 30/6 increments: 8 s -> 30 s billed; 0.05 + 0.12 * 30/60 = 0.11
    assert (row.billed_seconds, row.cost, row.currency, row.rule_key) == (30, 1100, "EUR", "prefix:06")
    assert row.profile_name == "lab" and row.rule_id is not None
    # The longest prefix wins, exact beats prefix.
    work(
        container,
        lambda s, p: record(s, "", parse(cdr("1795940000.12", "0612345678", 7)), source="file", node="n", rater=rater),
    )
    work(
        container,
        lambda s, p: record(s, "", parse(cdr("1795940000.13", "112", 0.4)), source="file", node="n", rater=rater),
    )
    by_number = {r.dialled: r for r in records(container)}
    assert (by_number["0612345678"].rule_key, by_number["0612345678"].cost) == ("prefix:0612", 350)  # 7 s at 0.30/min
    assert (by_number["112"].rule_key, by_number["112"].cost, by_number["112"].billsec) == ("exact:112", 0, 1)


def test_a_number_no_rule_matches_is_recorded_unpriced_and_reported(container: Container) -> None:
    rater = Rater()
    work(
        container,
        lambda s, p: record(s, "", parse(cdr("1795940001.1", "0298765", 30)), source="file", node="n", rater=rater),
    )
    (row,) = records(container)
    assert row.cost is None and row.unpriced == "no rule of profile lab matches 0298765"
    other_line = cdr("1795940001.2", "0698765", 30, dstchannel="PJSIP/backup-0000000b")
    work(container, lambda s, p: record(s, "", parse(other_line), source="file", node="n", rater=rater))
    assert records(container)[1].unpriced == "no cost profile for line backup and no default profile"
    with transaction(container.sessions) as session:
        assert reports.unpriced_count(session) == 2

    # A default profile with an "other" rule prices any line's calls from then on (not the past ones).
    def default(session: Session, pbx: Pbx) -> None:
        fallback = profiles.create_profile(session, pbx, "default")
        profiles.add_rules(session, pbx, fallback, [RuleInput("other", per_minute="0.60")])

    work(container, default)
    work(
        container,
        lambda s, p: record(
            s,
            "",
            parse(cdr("1795940001.3", "0698765", 60, dstchannel="PJSIP/backup-0000000c")),
            source="file",
            node="n",
            rater=rater,
        ),
    )
    assert (records(container)[2].cost, records(container)[2].profile_name) == (6000, "default")
    assert records(container)[1].cost is None


def test_internal_and_refused_calls_are_recorded_never_priced(container: Container) -> None:
    rater = Rater()
    internal = cdr("1795940002.1", "102", 12, kt_out="", dstchannel="PJSIP/102-00000002")
    refused = cdr("1795940002.2", "0699", 3, kt_out="refused", dstchannel="")
    for fields in (internal, refused):
        work(container, lambda s, p, f=fields: record(s, "", parse(f), source="file", node="n", rater=rater))
    views = {r.dialled: (r.direction.value, r.line, r.cost, r.unpriced) for r in records(container)}
    assert views == {"102": ("internal", "", None, ""), "0699": ("refused", "", None, "")}
    with transaction(container.sessions) as session:
        assert reports.unpriced_count(session) == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kt_dialled": "06;DROP TABLE"}, "kt_dialled"),
        ({"kt_from": "101\nX"}, "kt_from"),
        ({"kt_pbx": "Default PBX"}, "kt_pbx"),
        ({"uniqueid": "a b"}, "uniqueid"),
        ({"sequence": "x"}, "sequence"),
        ({"disposition": "MAYBE"}, "disposition"),
        ({"end": T0 - 10}, "ends before it starts"),
        ({"start": "yesterday"}, "start"),
        ({"kt_line": "trunk one"}, "kt_line"),
    ],
)
def test_bad_cdr_fields_are_refused_with_the_field(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadCdr, match=reason):
        parse(cdr("1795940003.1", "0612", 5) | change)


def test_only_calls_marked_by_our_dialplan_are_ours() -> None:
    assert is_ours(cdr("1.1", "06", 1))
    assert not is_ours(cdr("1.1", "06", 1, kt_pbx=""))
    assert not is_ours(cdr("1.1", "06", 1, kt_from=""))


def test_a_pbx_slug_the_gate_allows_is_recorded(container: Container) -> None:
    """kt_pbx is checked by the same gate that wrote it into the dialplan:
    every slug a PBX can have ('_' included) is ours."""
    with transaction(container.sessions) as session:
        grand = create_pbx(session, "grand_hotel", "Grand Hotel")
        services.create_template(session, grand, "std")
        services.create_room(session, grand, "101", "Room 101", "std")
    fields = cdr("1795940006.1", "0612", 5, kt_pbx="grand_hotel", kt_out="")
    assert work(container, lambda s, p: record(s, "", parse(fields), source="file", node="n", rater=Rater()))
    (row,) = records(container)
    assert (row.extension, row.room_id is not None, row.direction.value) == ("101", True, "internal")


def test_unknown_pbx_is_refused(container: Container) -> None:
    with pytest.raises(BadCdr, match="no PBX 'elsewhere'"):
        work(
            container,
            lambda s, p: record(
                s, "", parse(cdr("1.1", "06", 1, kt_pbx="elsewhere")), source="file", node="n", rater=Rater()
            ),
        )


# ------------------------------------------------------------------ stays
def test_room_cost_since_check_in_and_the_stay_report(container: Container, tmp_path: Path) -> None:
    rater = Rater()
    checkin = datetime.now(UTC) - timedelta(hours=1)
    stay_id = work(container, lambda s, p: stays.check_in(s, p, "101", "Ada Rossi", guests=["Bo"], at=checkin).id)
    start = (checkin + timedelta(minutes=5)).timestamp()
    before = cdr("1795940004.1", "0611111111", 30, start=checkin.timestamp() - 600)  # the previous guest's
    calls = [
        cdr("1795940004.2", "0645678901", 7.2, start=start),
        cdr("1795940004.3", "112", 1, start=start + 60),
        cdr("1795940004.4", "0298765", 10, start=start + 120),  # no rule: listed, not priced
        cdr("1795940004.5", "0645678901", 0, start=start + 180),  # not answered: not on the bill
    ]
    for fields in (before, *calls):
        work(container, lambda s, p, f=fields: record(s, "", parse(f), source="file", node="n", rater=rater))
    cost = work(container, lambda s, p: reports.room_cost(s, p, "101"))
    assert [r.dialled for r in cost.calls] == ["0645678901", "112", "0298765"]
    assert (cost.totals.by_currency, cost.totals.unpriced) == ({"EUR": 1100}, 1)
    assert work(container, lambda s, p: reports.occupied_costs(s, p))["101"].by_currency == {"EUR": 1100}
    work(container, lambda s, p: stays.check_out(s, p, "101"))
    report = work(container, lambda s, p: reports.stay_report(s, p, stay_id))
    reports.write_xlsx(report, tmp_path / "stay.xlsx")
    reports.write_csv(report, tmp_path / "stay.csv")
    sheet = load_workbook(tmp_path / "stay.xlsx").active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["Room", "101"] + [None] * 5 and rows[1][1] == "Ada Rossi, Bo"
    header = rows.index(["Date", "Time", "Number", "Line", "Duration (s)", "Cost", "Currency"])
    body = rows[header + 1 :]
    assert [(r[2], r[3], r[4], r[5]) for r in body[:3]] == [
        ("0645678901", "lab-trunk", 8, 0.11),
        ("112", "lab-trunk", 1, 0),
        ("0298765", "lab-trunk", 10, "not priced"),
    ]
    assert body[3][0] == "Total" and body[3][5] == 0.11 and body[3][6] == "EUR"
    assert body[4][0] == "Total incomplete"
    csv_lines = (tmp_path / "stay.csv").read_text().splitlines()
    assert csv_lines[1].split(",")[2:] == ["0645678901", "lab-trunk", "8", "0.1100", "EUR"]
    assert csv_lines[-2] == "Total,,,,,0.1100,EUR"
    assert oct((tmp_path / "stay.xlsx").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(reports.StayNotFound):
        work(container, lambda s, p: reports.stay_report(s, p, stay_id + 100))


def test_a_stay_of_another_pbx_is_not_found(container: Container) -> None:
    stay_id = work(container, lambda s, p: stays.check_in(s, p, "101", "Ada").id)
    with transaction(container.sessions) as session:
        other = create_pbx(session, "other", "Other hotel")
        with pytest.raises(reports.StayNotFound):
            reports.stay_report(session, other, stay_id)


# ------------------------------------------------------------------ the CDR file
def test_reconcile_reads_whole_lines_once_and_follows_a_rotated_file(container: Container, tmp_path: Path) -> None:
    path = tmp_path / "kalliope-cdr.json"
    rater = Rater()
    lines = [json.dumps(cdr(f"1795940005.{n}", "0645678901", 5)) for n in range(1, 4)]
    foreign = json.dumps(
        cdr("1795940005.9", "600", 5, kt_pbx="", kt_from="")
    )  # a lab phone, not a call from an extension
    partial = json.dumps(cdr("1795940005.4", "0645678901", 5))
    path.write_text(lines[0] + "\n" + foreign + "\n" + lines[1] + "\n" + "{not json\n" + lines[2] + "\n" + partial[:40])
    # A store that never saw the file starts at its end: nothing of the past, unless asked.
    first = reconcile(container.sessions, "", path, node="n", rater=rater)
    assert (first.lines, first.recorded) == (0, 0) and first.offset == path.read_text().rfind("\n") + 1
    with transaction(container.sessions) as session:
        session.execute(delete(CdrCursor))
    done = reconcile(container.sessions, "", path, node="n", rater=rater, import_past=True)
    assert (done.lines, done.ours, done.recorded) == (5, 3, 3)
    assert len(done.refused) == 1 and done.refused[0].startswith("offset ")
    with path.open("a") as f:
        f.write(partial[40:] + "\n")  # Asterisk finished the line
    again = reconcile(container.sessions, "", path, node="n", rater=rater)
    assert (again.lines, again.recorded) == (1, 1)
    assert reconcile(container.sessions, "", path, node="n", rater=rater).lines == 0  # caught up
    # Rotated: a new file (another inode) is read from its start.
    path.rename(tmp_path / "kalliope-cdr.json.1")
    path.write_text(json.dumps(cdr("1795940005.5", "112", 1)) + "\n" + lines[0] + "\n")
    rotated = reconcile(container.sessions, "", path, node="n", rater=rater)
    assert (rotated.lines, rotated.recorded) == (2, 1)  # lines[0] was recorded already
    with transaction(container.sessions) as session:
        assert session.scalar(select(func.count(CallRecord.id))) == 5
    assert reconcile(container.sessions, "", tmp_path / "missing.json", node="n", rater=rater).lines == 0

    def count() -> int:
        with transaction(container.sessions) as session:
            return int(session.scalar(select(func.count(CallRecord.id))) or 0)

    # Lines written to the old file after the last read, then rotated: read from the rotated file first.
    with path.open("a") as f:
        f.write(json.dumps(cdr("1795940005.6", "0645678901", 7)) + "\n")
        f.write(json.dumps(cdr("1795940005.7", "0645678901", 8)))  # its last line, never ended by a newline
    path.rename(tmp_path / "kalliope-cdr.json.2")
    path.write_text(json.dumps(cdr("1795940005.8", "0645678901", 9)) + "\n")
    after = reconcile(container.sessions, "", path, node="n", rater=rater)
    assert (after.recorded, count()) == (3, 8)
    # copytruncate: the same inode emptied and written again past the old cursor before we look.
    fresh = [json.dumps(cdr(f"1795940006.{n}", "0645678901", 3, kt_line=f"x{n}" * 40)) for n in range(1, 4)]
    with path.open("r+") as f:
        f.truncate(0)
        f.write("\n".join(fresh) + "\n")
    truncated = reconcile(container.sessions, "", path, node="n", rater=rater)
    assert (truncated.recorded, count()) == (3, 11)
    # A line over a batch (64 KiB) is refused with its offset and passed; the next line is recorded.
    with path.open("a") as f:
        f.write('{"junk": "' + "x" * (70 << 10) + '"}\n')
        f.write(json.dumps(cdr("1795940007.1", "0645678901", 4)) + "\n")
    long = reconcile(container.sessions, "", path, node="n", rater=rater)
    assert long.recorded == 1 and len(long.refused) == 1 and "over 65536" in long.refused[0], long.refused
    assert count() == 12


def test_profiles_are_per_pbx(container: Container) -> None:
    with transaction(container.sessions) as session:
        other = create_pbx(session, "other", "Other hotel")
        profiles.create_profile(session, other, "lab", line="lab-trunk")  # same names, another PBX: allowed
        assert [p.name for p in profiles.list_profiles(session, other)] == ["lab"]
        with pytest.raises(profiles.ProfileNotFound):
            profiles.get_profile(session, other, "nothing")
        assert session.scalar(select(func.count(CostProfile.id))) == 2
