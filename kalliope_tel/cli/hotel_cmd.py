"""``kalliope-tel hotel``: the receptionist's and the admin's commands."""

from __future__ import annotations

import dataclasses
import enum
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import Progress

from kalliope_tel.cli.context import (
    STATE,
    console,
    done,
    err_console,
    print_json,
    print_table,
    read_secrets,
    run_in_pbx,
)
from kalliope_tel.hotel.exceptions import InvalidValue
from kalliope_tel.localtime import parse_local_time

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.extensions import accounts
    from kalliope_tel.hotel import cleaning, importer, services, stays
    from kalliope_tel.tenancy.models import Pbx
else:
    from kalliope_tel.lazy import LazyModule

    accounts = LazyModule("kalliope_tel.extensions.accounts")
    cleaning = LazyModule("kalliope_tel.hotel.cleaning")
    importer = LazyModule("kalliope_tel.hotel.importer")
    services = LazyModule("kalliope_tel.hotel.services")
    stays = LazyModule("kalliope_tel.hotel.stays")


class Outbound(enum.StrEnum):
    """The --class choices (ClassKind's values, without loading the models)."""

    STANDARD = "standard"
    RESTRICTED = "restricted"


app = typer.Typer(help="Hotel: rooms, templates, check-in/out, cleaning.", no_args_is_help=True)
classes_app = typer.Typer(help="Outbound routing classes.", no_args_is_help=True)
templates_app = typer.Typer(help="Room templates.", no_args_is_help=True)
rooms_app = typer.Typer(help="Rooms.", no_args_is_help=True)
accounts_app = typer.Typer(help="SIP accounts.", no_args_is_help=True)
app.add_typer(classes_app, name="classes")
app.add_typer(templates_app, name="templates")
app.add_typer(rooms_app, name="rooms")
app.add_typer(accounts_app, name="accounts")

JSON = typer.Option(False, "--json", help="Machine-readable output.")
SET_HELP = (
    "Template value KEY=VALUE (repeatable): building, floor, phonebook (yes/no), ldap_mode "
    "(none/internal/public), standard_class, restricted_class, calls_limit, busy_level, ring_timeout."
)
FAILOVER_HELP = (
    "Failover OUTCOME.ORIGIN=EXTENSION|hangup (repeatable); "
    "outcomes noanswer/busy/unavailable, origins internal/external/transfer."
)
SET = typer.Option([], "--set", help=SET_HELP)
FAILOVER = typer.Option([], "--failover", help=FAILOVER_HELP)


@app.callback()
def hotel_main(pbx: str = typer.Option(None, "--pbx", help="PBX slug (default: the default PBX).")) -> None:
    STATE.pbx_slug = pbx


run = run_in_pbx


KEYS = {"building": "organization", "floor": "organizational_unit", "phonebook": "show_in_phonebook"}
INT_KEYS = {"calls_limit", "busy_level", "ring_timeout"}


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise InvalidValue(f"--set {pair!r}: use KEY=VALUE")
        if key in INT_KEYS:
            if not raw.strip().isdigit():
                raise InvalidValue(f"{key} must be a whole number, not {raw!r}")
            values[key] = int(raw)
        elif key == "phonebook":
            if raw.lower() not in ("yes", "no", "true", "false", "1", "0"):
                raise InvalidValue(f"phonebook must be yes or no, not {raw!r}")
            values[KEYS[key]] = raw.lower() in ("yes", "true", "1")
        else:
            values[KEYS.get(key, key)] = raw
    return values


def parse_failovers(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, dest = pair.partition("=")
        if not sep:
            raise InvalidValue(f"--failover {pair!r}: use OUTCOME.ORIGIN=DESTINATION")
        out[key.strip()] = dest.strip()
    return out


# ------------------------------------------------------------------ settings
@app.command("settings")
def settings_cmd(
    cleaning_prefix: str | None = typer.Option(None, help="Service code prefix, e.g. *33."),
    cleaning_code: bool | None = typer.Option(None, "--cleaning-code/--no-cleaning-code", help="Phone code on/off."),
    block_room_to_room: bool | None = typer.Option(None, "--block-room-to-room/--allow-room-to-room"),
    nightly_dirty_at: str | None = typer.Option(None, help="Local time HH:MM when occupied rooms become dirty."),
    non_room_class: str | None = typer.Option(None, help="Outbound class of extensions that are not rooms."),
    checkout_dirty: bool | None = typer.Option(
        None, "--checkout-dirty/--checkout-clean", help="Whether a room checked out becomes dirty (default: yes)."
    ),
    guest_names: bool | None = typer.Option(
        None,
        "--directory-guest-names/--no-directory-guest-names",
        help="Publish an occupied room's guest name in the directory (default: no, the room's name only).",
    ),
    as_json: bool = JSON,
) -> None:
    """Show the hotel's global settings, changing those given."""
    values: dict[str, Any] = {
        "cleaning_prefix": cleaning_prefix,
        "cleaning_enabled": cleaning_code,
        "block_room_to_room": block_room_to_room,
        "checkout_dirty": checkout_dirty,
        "directory_guest_names": guest_names,
    }
    if nightly_dirty_at is not None:
        try:
            values["nightly_dirty_at"] = time.fromisoformat(nightly_dirty_at)
        except ValueError:
            raise InvalidValue(f"nightly time {nightly_dirty_at!r}: use HH:MM") from None
    if non_room_class is not None:
        values["non_room_class"] = non_room_class

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        services.update_settings(session, pbx, **values)
        return services.settings_view(session, pbx) | {"timezone": pbx.timezone}

    data = run(work)
    if as_json:
        print_json(data)
    else:
        print_table("hotel settings", ["setting", "value"], [[k, v] for k, v in data.items()])


# ------------------------------------------------------------------ classes
@classes_app.command("list")
def classes_list(as_json: bool = JSON) -> None:
    rows = run(
        lambda s, p: [
            {"name": c.name, "patterns": c.patterns, "trunk_context": c.trunk_context, "description": c.description}
            for c in accounts.list_classes(s, p)
        ]
    )
    if as_json:
        print_json(rows)
    else:
        print_table(
            "outbound classes",
            ["name", "patterns", "trunk context", "description"],
            [[r["name"], " ".join(r["patterns"]), r["trunk_context"], r["description"]] for r in rows],
        )


@classes_app.command("add")
def classes_add(
    name: str,
    pattern: list[str] = typer.Option(..., "--pattern", help="Allowed number or _PATTERN (repeatable)."),
    trunk_context: str = typer.Option("kalliope-trunk", help="Dialplan context that reaches the trunk."),
    description: str = typer.Option(""),
    as_json: bool = JSON,
) -> None:
    run(lambda s, p: accounts.create_class(s, p, name, pattern, trunk_context, description))
    done(f"class {name} added", {"class": name, "added": True}, as_json)


@classes_app.command("remove")
def classes_remove(name: str, as_json: bool = JSON) -> None:
    run(lambda s, p: services.delete_class(s, p, name))
    done(f"class {name} removed", {"class": name, "removed": True}, as_json)


@classes_app.command("init")
def classes_init(trunk_context: str = typer.Option("kalliope-trunk"), as_json: bool = JSON) -> None:
    """Create the 'restricted' (emergency only) and 'standard' classes if none exist."""
    run(lambda s, p: services.ensure_default_classes(s, p, trunk_context))
    classes_list(as_json=as_json)


# ------------------------------------------------------------------ defaults and templates
def _template_row(session: Session, pbx: Pbx, t: Any) -> dict[str, Any]:
    names = {c.id: c.name for c in accounts.list_classes(session, pbx)}
    failovers = (
        t.failovers
        if isinstance(t.failovers, dict)
        else {f"{f.outcome.value}.{f.origin.value}": f.destination for f in t.failovers}
    )
    return {
        "name": getattr(t, "name", "(defaults)"),
        "building": t.organization or "",
        "floor": t.organizational_unit or "",
        "phonebook": t.show_in_phonebook,
        "ldap_mode": t.ldap_mode.value if t.ldap_mode else "",
        "standard_class": names.get(t.standard_class_id or -1, ""),
        "restricted_class": names.get(t.restricted_class_id or -1, ""),
        "calls_limit": t.calls_limit,
        "busy_level": t.busy_level,
        "ring_timeout": t.ring_timeout,
        "failovers": dict(sorted(failovers.items())),
    }


def _show_templates(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        print_json(rows)
        return
    cols = [
        "name",
        "building",
        "floor",
        "standard_class",
        "restricted_class",
        "calls_limit",
        "busy_level",
        "ring_timeout",
        "failovers",
    ]
    print_table(
        title,
        cols,
        [[r[c] if c != "failovers" else ", ".join(f"{k}={v}" for k, v in r[c].items()) for c in cols] for r in rows],
    )


@app.command("defaults")
def defaults_cmd(sets: list[str] = SET, failover: list[str] = FAILOVER, as_json: bool = JSON) -> None:
    """Show the default values that seed every new template, changing those given."""
    values, fo = parse_sets(sets), parse_failovers(failover)
    row = run(lambda s, p: _template_row(s, p, services.update_template_defaults(s, p, fo or None, **values)))
    _show_templates([row], as_json, "default values of room templates")


@templates_app.command("list")
def templates_list(as_json: bool = JSON) -> None:
    rows = run(lambda s, p: [_template_row(s, p, t) for t in services.list_templates(s, p)])
    _show_templates(rows, as_json, "room templates")


@templates_app.command("add")
def templates_add(name: str, sets: list[str] = SET, failover: list[str] = FAILOVER, as_json: bool = JSON) -> None:
    """Create a template from the defaults, with the values given."""
    values, fo = parse_sets(sets), parse_failovers(failover)
    row = run(lambda s, p: _template_row(s, p, services.create_template(s, p, name, fo, **values)))
    done(f"template {name} added", row, as_json)


@templates_app.command("update")
def templates_update(name: str, sets: list[str] = SET, failover: list[str] = FAILOVER, as_json: bool = JSON) -> None:
    values, fo = parse_sets(sets), parse_failovers(failover)
    row = run(lambda s, p: _template_row(s, p, services.update_template(s, p, name, fo, **values)))
    done(f"template {name} updated", row, as_json)


@templates_app.command("remove")
def templates_remove(name: str, as_json: bool = JSON) -> None:
    run(lambda s, p: services.delete_template(s, p, name))
    done(f"template {name} removed", {"template": name, "removed": True}, as_json)


# ------------------------------------------------------------------ rooms
def _room_dict(view: services.EffectiveRoom) -> dict[str, Any]:
    return dataclasses.asdict(view)


@rooms_app.command("list")
def rooms_list(
    building: str | None = typer.Option(None),
    floor: str | None = typer.Option(None),
    dirty: bool | None = typer.Option(None, "--dirty/--clean", help="Only dirty, or only clean rooms."),
    occupied: bool | None = typer.Option(None, "--occupied/--free"),
    text: str | None = typer.Option(None, "--text", help="Free text over guest names and notes."),
    as_json: bool = JSON,
) -> None:
    """The receptionist's view: rooms with occupancy, guests, cleaning."""
    filters = services.RoomFilter(building, floor, None if dirty is None else not dirty, occupied, text)
    rows = run(lambda s, p: [_room_dict(v) for v in services.list_rooms(s, p, filters)])
    if as_json:
        print_json(rows)
        return
    print_table(
        f"rooms ({len(rows)})",
        ["ext", "name", "building", "floor", "status", "guests", "notes", "cleaning", "class"],
        [
            [
                r["extension"],
                r["name"],
                r["building"],
                r["floor"],
                "occupied" if r["occupied"] else "free",
                ", ".join([r["stay"]["owner"], *r["stay"]["guests"]]) if r["stay"] else "",
                r["stay"]["notes"] if r["stay"] else "",
                "clean" if r["clean"] else "DIRTY",
                r["stay"]["outbound"] if r["stay"] else "restricted",
            ]
            for r in rows
        ],
    )


@rooms_app.command("show")
def rooms_show(extension: str, as_json: bool = JSON) -> None:
    data = run(lambda s, p: _room_dict(services.room_view(s, p, extension)))
    if as_json:
        print_json(data)
    else:
        print_table(f"room {extension}", ["field", "value"], [[k, v] for k, v in data.items()])


@rooms_app.command("add")
def rooms_add(
    extension: str,
    name: str = typer.Option("", help="Room name (default: the extension)."),
    template: str = typer.Option(..., help="Room template."),
    account: list[str] = typer.Option([], "--account", help="Attach an existing SIP account (repeatable)."),
    new_accounts: int = typer.Option(0, help="Create this many SIP accounts with generated passwords."),
    sets: list[str] = SET,
    failover: list[str] = FAILOVER,
    as_json: bool = JSON,
) -> None:
    """Add a room; generated SIP passwords are printed once."""
    values, fo = parse_sets(sets), parse_failovers(failover)
    created = run(
        lambda s, p: (
            services.create_room(
                s, p, extension, name, template, attach=account, new_accounts=new_accounts, failovers=fo, **values
            ).new_credentials
        )
    )
    if as_json:
        print_json({"room": extension, "new_accounts": created})  # passwords: shown this once
        return
    console.print(f"room {extension} added")
    for username, password in created.items():
        console.print(f"  SIP account {username}  password {password}  (shown once)", highlight=False)


@rooms_app.command("update")
def rooms_update(
    extension: str,
    name: str | None = typer.Option(None),
    template: str | None = typer.Option(None),
    sets: list[str] = SET,
    failover: list[str] = FAILOVER,
    clear: list[str] = typer.Option([], "--clear", help="Go back to the template's value for KEY (repeatable)."),
    as_json: bool = JSON,
) -> None:
    values, fo = parse_sets(sets), parse_failovers(failover)
    row = run(
        lambda s, p: _room_dict(
            services.effective(
                services.update_room(
                    s, p, extension, name=name, template=template, failovers=fo, clear=clear, **values
                ),
                {c.id: c.name for c in accounts.list_classes(s, p)},
            )
        )
    )
    done(f"room {extension} updated", row, as_json)


@rooms_app.command("remove")
def rooms_remove(extension: str, as_json: bool = JSON) -> None:
    run(lambda s, p: services.delete_room(s, p, extension))
    done(f"room {extension} removed", {"room": extension, "removed": True}, as_json)


@rooms_app.command("import")
def rooms_import(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or XLSX file (see import-template)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Import the good rows, report the bad ones."),
    as_json: bool = JSON,
) -> None:
    """Massive import of rooms. Any bad row: nothing is imported (unless --skip-bad)."""
    rows = importer.read_rows(path)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(f"importing {len(rows)} rooms", total=len(rows))
        report = run(
            lambda s, p: importer.import_rooms(
                s, p, rows, skip_bad=skip_bad, progress=lambda n: progress.update(task, completed=n)
            )
        )
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    console.print(f"{report.imported} room(s) imported from {path.name}", highlight=False)
    for line, reason in report.skipped:
        console.print(f"  skipped line {line}: {reason}", highlight=False)
    for username, password in report.credentials.items():
        console.print(f"  SIP account {username}  password {password}  (shown once)", highlight=False)


@rooms_app.command("import-template")
def rooms_import_template(
    output: Path = typer.Argument(..., help="Where to write it; .csv or .xlsx."),
    as_json: bool = JSON,
) -> None:
    """Write the import file template (header and an example row)."""
    importer.write_template(output)
    done(f"template written to {output}", {"written": str(output)}, as_json)


# ------------------------------------------------------------------ accounts
@accounts_app.command("list")
def accounts_list(as_json: bool = JSON) -> None:
    rows = run(
        lambda s, p: [
            {"username": a.username, "realm": a.realm, "room": a.extension.number if a.extension else ""}
            for a in accounts.list_accounts(s, p)
        ]
    )
    if as_json:
        print_json(rows)
    else:
        print_table("SIP accounts", ["username", "realm", "room"], [list(r.values()) for r in rows])


@accounts_app.command("add")
def accounts_add(
    username: str,
    set_password: bool = typer.Option(False, "--set-password", help="Type the password at a hidden prompt."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    as_json: bool = JSON,
) -> None:
    """Add a SIP account. The password is generated and printed once, or given
    at a prompt or on standard input: never on the command line, where ps and
    the shell history would keep it."""
    given = None
    if set_password or password_stdin:
        (given,) = read_secrets(["SIP password"], from_stdin=password_stdin)

    def work(session: Session, pbx: Pbx) -> tuple[str, str]:
        created, secret = accounts.create_account(session, pbx, username, given)
        return accounts.sip_login(pbx, created.username), secret

    account, secret = run(work)
    if as_json:
        print_json({"username": username, "login": account, "password": None if given else secret})
        return
    console.print(
        f"SIP account {username} added (login {account})" + ("" if given else f"; password {secret} (shown once)"),
        highlight=False,
    )


# ------------------------------------------------------------------ stays


@app.command("checkin")
def checkin(
    extension: str,
    owner: str = typer.Option(..., help="Name the room is registered to."),
    guest: list[str] = typer.Option([], "--guest", help="Additional guest (repeatable)."),
    notes: str = typer.Option(""),
    outbound: Outbound = typer.Option(Outbound.RESTRICTED, "--class", help="External calls: standard or restricted."),
    alarm: list[str] = typer.Option([], "--alarm", help="Wake-up 'YYYY-MM-DD HH:MM' in the PBX's time zone."),
    as_json: bool = JSON,
) -> None:
    """Check a guest in (time-stamped)."""

    from kalliope_tel.hotel.models import ClassKind

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        alarms = [parse_local_time(a, pbx.timezone) for a in alarm]
        return stays.as_dict(
            stays.check_in(
                session, pbx, extension, owner, guests=guest, notes=notes, outbound=ClassKind(outbound), alarms=alarms
            )
        )

    data = run(work)
    if as_json:
        print_json(data)
    else:
        console.print(
            f"room {extension} checked in: {data['owner']} at {data['checkin_at']}, {data['outbound']} calls",
            highlight=False,
        )


@app.command("stay")
def stay_update(
    extension: str,
    owner: str | None = typer.Option(None),
    guest: list[str] | None = typer.Option(None, "--guest", help="Replace the additional guests (repeatable)."),
    notes: str | None = typer.Option(None),
    outbound: Outbound | None = typer.Option(None, "--class", help="Change the external calls class."),
    as_json: bool = JSON,
) -> None:
    """Show or change the current stay of a room."""
    from kalliope_tel.hotel.models import ClassKind

    kind = ClassKind(outbound) if outbound is not None else None
    data = run(
        lambda s, p: stays.as_dict(
            stays.update_stay(s, p, extension, owner=owner, guests=guest, notes=notes, outbound=kind)
        )
    )
    if as_json:
        print_json(data)
    else:
        print_table(f"room {extension}", ["field", "value"], [[k, v] for k, v in data.items()])


@app.command("checkout")
def checkout(
    extension: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."), as_json: bool = JSON
) -> None:
    """Check the room out; its history keeps guests and notes as they are now."""
    current = run(lambda s, p: stays.as_dict(stays.current_stay(s, p, extension)))
    if not yes and not typer.confirm(f"Check out room {extension} ({current['owner']})?"):
        raise typer.Exit(1)
    data = run(lambda s, p: stays.as_dict(stays.check_out(s, p, extension)))
    done(f"room {extension} checked out at {data['checkout_at']}", data, as_json)


@app.command("clean")
def clean_cmd(
    extension: str,
    clean: bool = typer.Option(..., "--clean/--dirty", help="Mark the room clean or dirty."),
    as_json: bool = JSON,
) -> None:
    """Set a room's cleaning status (as the receptionist's button does)."""
    from kalliope_tel.hotel.models import CleaningSource

    run(lambda s, p: cleaning.set_cleaning(s, p, extension, clean, CleaningSource.OPERATOR))
    done(f"room {extension} is {'clean' if clean else 'dirty'}", {"room": extension, "clean": clean}, as_json)


@app.command("nightly-reset")
def nightly_reset(as_json: bool = JSON) -> None:
    """Run tonight's reset now if it is due (serve does this by itself)."""
    count = run(lambda s, p: cleaning.run_nightly_reset(s, p, node="cli"))
    message = "nothing to do (not due yet, or done today)" if count is None else f"{count} room(s) marked dirty"
    done(message, {"ran": count is not None, "rooms": count or 0}, as_json)


@app.command("history")
def history_cmd(
    room: str | None = typer.Option(None, help="Only this room's extension."),
    text: str | None = typer.Option(None, help="Free text over guest names and notes."),
    open_only: bool = typer.Option(False, "--open", help="Only current stays."),
    as_json: bool = JSON,
) -> None:
    """Reservation history: current stays (no check-out) and past ones."""
    filters = stays.HistoryFilter(extension=room, text=text, open_only=open_only)
    rows = run(lambda s, p: [stays.as_dict(x) for x in stays.history(s, p, filters)])
    if as_json:
        print_json(rows)
        return
    print_table(
        "reservation history",
        ["stay", "room", "check-in", "check-out", "owner", "guests", "notes"],
        [
            [
                r["id"],
                r["room"],
                r["checkin_at"][:16],
                (r["checkout_at"] or "")[:16],
                r["owner"],
                ", ".join(r["guests"]),
                r["notes"],
            ]
            for r in rows
        ],
    )
