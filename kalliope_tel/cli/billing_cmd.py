"""``kalliope-tel billing``: cost profiles and rules (with CSV import and
export), the recorded calls, rooms' costs since check-in and the calls
report of a stay."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import STATE, console, done, print_json, print_table, run_in_pbx
from kalliope_tel.errors import KalliopeError
from kalliope_tel.localtime import parse_local_time

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.billing import profiles, reports
    from kalliope_tel.billing.models import CostProfile
    from kalliope_tel.tenancy.models import Pbx
else:
    from kalliope_tel.lazy import LazyModule

    profiles = LazyModule("kalliope_tel.billing.profiles")
    reports = LazyModule("kalliope_tel.billing.reports")

app = typer.Typer(help="Billing: cost profiles, call records, costs per room and stay.", no_args_is_help=True)
profiles_app = typer.Typer(help="Cost profiles: one per outgoing line, and a default.", no_args_is_help=True)
rules_app = typer.Typer(help="A profile's rules: exact numbers, prefixes, all other numbers.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")
app.add_typer(rules_app, name="rules")
JSON = typer.Option(False, "--json", help="Machine-readable output.")


@app.callback()
def billing_main(pbx: str = typer.Option(None, "--pbx", help="PBX slug (default: the default PBX).")) -> None:
    STATE.pbx_slug = pbx


def _profile_row(profile: CostProfile, session: Session) -> dict[str, Any]:
    return {
        "name": profile.name,
        "line": profile.line or "(default)",
        "currency": profile.currency,
        "description": profile.description,
        "rules": [profiles.rule_view(r, profile.currency) for r in profiles.rules_of(session, profile)],
    }


# ------------------------------------------------------------------ profiles
@profiles_app.command("list")
def profiles_list(as_json: bool = JSON) -> None:
    rows = run_in_pbx(lambda s, p: [_profile_row(x, s) for x in profiles.list_profiles(s, p)])
    if as_json:
        print_json(rows)
        return
    print_table(
        "cost profiles",
        ["name", "line", "currency", "rules", "description"],
        [[r["name"], r["line"], r["currency"], len(r["rules"]), r["description"]] for r in rows],
    )


@profiles_app.command("add")
def profiles_add(
    name: str,
    line: str = typer.Option("", help="The outgoing line (trunk endpoint) it prices; none: the default profile."),
    currency: str = typer.Option("EUR"),
    description: str = typer.Option(""),
    as_json: bool = JSON,
) -> None:
    """Add a profile: for one outgoing line, or the default for every other."""
    row = run_in_pbx(
        lambda s, p: _profile_row(
            profiles.create_profile(s, p, name, line=line, currency=currency, description=description), s
        )
    )
    done(f"profile {name} added for {row['line']}", row, as_json)


@profiles_app.command("show")
def profiles_show(name: str, as_json: bool = JSON) -> None:
    row = run_in_pbx(lambda s, p: _profile_row(profiles.get_profile(s, p, name), s))
    if as_json:
        print_json(row)
        return
    console.print(f"profile {row['name']}: line {row['line']}, {row['currency']}", highlight=False)
    _print_rules(row["rules"])


@profiles_app.command("remove")
def profiles_remove(name: str, as_json: bool = JSON) -> None:
    """Remove a profile and its rules (calls priced with it keep their cost)."""
    run_in_pbx(lambda s, p: profiles.remove_profile(s, p, name))
    done(f"profile {name} removed", {"removed": name}, as_json)


# ------------------------------------------------------------------ rules
def _print_rules(rules: list[dict[str, Any]]) -> None:
    print_table(
        "rules",
        ["match", "digits", "fee", "per minute", "increments", "minimum", "description"],
        [
            [
                r["match"],
                r["digits"],
                r["connection_fee"],
                r["per_minute"],
                f"{r['first_increment']}/{r['next_increment']}",
                r["minimum"],
                r["description"],
            ]
            for r in rules
        ],
    )


def _increments(text: str) -> tuple[int, int]:
    first, _, following = text.partition("/")
    try:
        return int(first), int(following or first)
    except ValueError:
        raise KalliopeError(f"--increments {text!r}: FIRST/NEXT in seconds, like 60/60, 30/6 or 1/1") from None


def _match(exact: str | None, prefix: str | None, other: bool) -> tuple[str, str]:
    chosen = [(m, d) for m, d in (("exact", exact), ("prefix", prefix)) if d is not None]
    if other:
        chosen.append(("other", ""))
    if len(chosen) != 1:
        raise KalliopeError("give one of --exact NUMBER, --prefix DIGITS or --other")
    return chosen[0][0], chosen[0][1] or ""


EXACT = typer.Option(None, "--exact", help="This number only.")
PREFIX = typer.Option(None, "--prefix", help="Numbers starting so (the longest prefix wins).")
OTHER = typer.Option(False, "--other", help="All other numbers.")


@rules_app.command("list")
def rules_list(profile: str, as_json: bool = JSON) -> None:
    row = run_in_pbx(lambda s, p: _profile_row(profiles.get_profile(s, p, profile), s))
    if as_json:
        print_json(row["rules"])
    else:
        _print_rules(row["rules"])


@rules_app.command("add")
def rules_add(
    profile: str,
    exact: str | None = EXACT,
    prefix: str | None = PREFIX,
    other: bool = OTHER,
    per_minute: str = typer.Option(..., "--per-minute", help="Price per minute, e.g. 0.12"),
    fee: str = typer.Option("0", "--fee", help="Connection fee, charged once an answered call starts."),
    increments: str = typer.Option("60/60", help="Billing increments FIRST/NEXT in seconds."),
    minimum: str = typer.Option("0", help="Minimum charge of an answered call."),
    description: str = typer.Option(""),
    as_json: bool = JSON,
) -> None:
    """Add a rule; a duplicate (same number, same prefix, second 'other') is refused."""
    match, digits = _match(exact, prefix, other)
    first, following = _increments(increments)
    given = profiles.RuleInput(match, digits, fee, per_minute, first, following, minimum, "", description)

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        found = profiles.get_profile(session, pbx, profile)
        (row,) = profiles.add_rules(session, pbx, found, [given])
        return profiles.rule_view(row, found.currency)

    row = run_in_pbx(work)
    done(f"rule {match} {digits} added to {profile}".replace("  ", " "), row, as_json)


@rules_app.command("remove")
def rules_remove(
    profile: str, exact: str | None = EXACT, prefix: str | None = PREFIX, other: bool = OTHER, as_json: bool = JSON
) -> None:
    match, digits = _match(exact, prefix, other)
    run_in_pbx(lambda s, p: profiles.remove_rule(s, profiles.get_profile(s, p, profile), match, digits))
    done(f"rule {match} {digits} removed from {profile}", {"removed": {"match": match, "digits": digits}}, as_json)


@rules_app.command("import")
def rules_import(
    profile: str,
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="CSV with columns match, digits, connection_fee, per_minute, first_increment, next_increment, "
        "minimum, currency, description (as 'rules export' writes).",
    ),
    replace: bool = typer.Option(False, "--replace", help="The file's rules become the profile's only rules."),
    as_json: bool = JSON,
) -> None:
    """Import rules from CSV: all or nothing, each problem named by its line."""
    text = file.read_text(encoding="utf-8-sig")

    def work(session: Session, pbx: Pbx) -> int:
        return len(
            profiles.import_csv(session, pbx, profiles.get_profile(session, pbx, profile), text, replace=replace)
        )

    count = run_in_pbx(work)
    done(f"{count} rule(s) imported into {profile}", {"imported": count, "replaced": replace}, as_json)


@rules_app.command("export")
def rules_export(
    profile: str,
    file: Path | None = typer.Argument(None, help="Where to write (default: standard output)."),
    as_json: bool = typer.Option(False, "--json", help="The rules as JSON instead of CSV."),
) -> None:
    """Export the rules as CSV (the import's format)."""
    if as_json:
        rules_list(profile, as_json=True)
        return
    text = run_in_pbx(lambda s, p: profiles.export_csv(s, profiles.get_profile(s, p, profile)))
    if file is None:
        sys.stdout.write(text)
    else:
        from kalliope_tel.files import atomic_write

        atomic_write(file, text.encode())
        console.print(f"{file}: rules of {profile}", highlight=False)


# ------------------------------------------------------------------ calls
@app.command("calls")
def calls_cmd(
    room: str | None = typer.Option(None, "--room", help="Calls from this extension."),
    stay: int | None = typer.Option(None, "--stay", help="Calls of this stay (see 'hotel history')."),
    since: str | None = typer.Option(None, help="From 'YYYY-MM-DD HH:MM' (PBX time zone)."),
    until: str | None = typer.Option(None, help="Before 'YYYY-MM-DD HH:MM' (PBX time zone)."),
    unpriced: bool = typer.Option(False, "--unpriced", help="Only outbound calls no rule priced."),
    limit: int = typer.Option(200, help="At most this many (oldest first)."),
    as_json: bool = JSON,
) -> None:
    """The recorded calls, with their cost and the rule that priced it."""

    def work(session: Session, pbx: Pbx) -> list[dict[str, Any]]:
        start = parse_local_time(since, pbx.timezone) if since else None
        end = parse_local_time(until, pbx.timezone) if until else None
        found = reports.calls(
            session, pbx, extension=room, stay_id=stay, since=start, until=end, unpriced=unpriced, limit=limit
        )
        return [reports.call_view(r, pbx.timezone) for r in found]

    rows = run_in_pbx(work)
    if as_json:
        print_json(rows)
        return
    print_table(
        "calls",
        ["date", "time", "from", "number", "line", "kind", "result", "secs", "cost", "priced by"],
        [
            [
                r["date"],
                r["time"],
                r["extension"],
                r["number"],
                r["line"],
                r["direction"],
                r["disposition"],
                r["duration"],
                f"{r['cost']} {r['currency']}" if r["cost"] is not None else (r["unpriced"] or "-"),
                f"{r['profile']} {r['rule']}".strip(),
            ]
            for r in rows
        ],
    )


@app.command("rooms")
def rooms_cmd(
    room: str | None = typer.Argument(None, help="One room: its calls since check-in; none: every occupied room."),
    as_json: bool = JSON,
) -> None:
    """The cost of the calls since check-in, per room."""
    if room is not None:

        def one(session: Session, pbx: Pbx) -> dict[str, Any]:
            cost = reports.room_cost(session, pbx, room)
            return {
                "room": room,
                "stay": cost.stay.id,
                "checkin_at": cost.stay.checkin_at.isoformat(),
                "owner": cost.stay.owner,
                **cost.totals.as_dict(),
                "calls": [reports.call_view(r, pbx.timezone) for r in cost.calls],
            }

        data = run_in_pbx(one)
        if as_json:
            print_json(data)
            return
        unpriced = f", {data['unpriced']} call(s) not priced" if data["unpriced"] else ""
        console.print(
            f"room {room} ({data['owner']}, since {data['checkin_at'][:16]}): {_total(data)}{unpriced}",
            highlight=False,
        )
        return

    def every(session: Session, pbx: Pbx) -> dict[str, dict[str, Any]]:
        return {ext: totals.as_dict() for ext, totals in sorted(reports.occupied_costs(session, pbx).items())}

    rows = run_in_pbx(every)
    if as_json:
        print_json(rows)
        return
    print_table(
        "cost since check-in",
        ["room", "total", "not priced"],
        [[ext, _total(v), v["unpriced"]] for ext, v in rows.items()],
    )


def _total(view: dict[str, Any]) -> str:
    return ", ".join(f"{v} {c}" for c, v in view["total"].items()) or "0"


class Format(StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


@app.command("report")
def report_cmd(
    stay: int = typer.Argument(..., help="The stay (see 'kalliope-tel hotel history')."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report here."),
    fmt: Format = typer.Option(Format.XLSX, "--format", help="xlsx or csv."),
    as_json: bool = JSON,
) -> None:
    """The calls report of a stay: date, time, number, line, duration, cost, total."""

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        report = reports.stay_report(session, pbx, stay)
        if output is not None:
            (reports.write_xlsx if fmt is Format.XLSX else reports.write_csv)(report, output)
        return {
            "stay": stay,
            "room": report.stay.room_extension,
            "owner": report.stay.owner,
            **report.totals.as_dict(),
            "calls": [reports.call_view(r, pbx.timezone) for r in report.calls],
            "file": str(output) if output else None,
        }

    data = run_in_pbx(work)
    if as_json:
        print_json(data)
        return
    print_table(
        f"stay {stay}, room {data['room']} ({data['owner']})",
        ["date", "time", "number", "line", "secs", "cost"],
        [
            [c["date"], c["time"], c["number"], c["line"], c["duration"], c["cost"] or reports.NOT_PRICED]
            for c in data["calls"]
        ],
    )
    console.print(f"total: {_total(data)}" + (f", {data['unpriced']} not priced" if data["unpriced"] else ""))
    if output is not None:
        console.print(f"written: {output}", highlight=False)


@app.command("reconcile")
def reconcile_cmd(
    import_past: bool = typer.Option(
        False, "--import-past", help="The first time: record the calls already in the file too (else from its end)."
    ),
    as_json: bool = JSON,
) -> None:
    """Read Asterisk's CDR file now and record the calls missing (serve does
    this at start and periodically)."""
    from kalliope_tel.billing.cdrfile import reconcile
    from kalliope_tel.billing.records import Rater

    cdr_file = STATE.container.endpoints.cdr_file
    if not cdr_file:
        raise KalliopeError("no CDR file configured (cdr_file / KALLIOPE_CDR_FILE)")
    read = reconcile(STATE.container.sessions, "", Path(cdr_file), node="cli", rater=Rater(), import_past=import_past)
    data = {"file": cdr_file, "lines": read.lines, "recorded": read.recorded, "refused": read.refused}
    done(f"{cdr_file}: {read.lines} line(s) read, {read.recorded} call(s) recorded", data, as_json)
