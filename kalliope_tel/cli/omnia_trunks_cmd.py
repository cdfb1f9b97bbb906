"""``kalliope-tel omnia carriers|trunks|numbers|groups``: the Manager's SIP
trunks, numbers and groups of PBXs from the command line, through the same
services as the web, logged in the Manager log as the operating-system user.

A trunk's password never comes from argv: ``--password-stdin`` reads it
from standard input (or a hidden prompt asks for it), and no output shows
it. The trunk list asks Asterisk for each registration's state now.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import STATE, done, in_transaction, print_json, print_table, read_secrets
from kalliope_tel.cli.omnia_manager_cmd import COMPANY, JSON, PBX, cli_actor, company_of, on_pbx

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.tenancy.models import Company

carriers_app = typer.Typer(help="The installation's carriers and their defaults.", no_args_is_help=True)
trunks_app = typer.Typer(help="A company's SIP trunks and their registration state.", no_args_is_help=True)
numbers_app = typer.Typer(help="A PBX's numbers and blocks of numbers.", no_args_is_help=True)
groups_app = typer.Typer(help="Shared and numbering groups of PBXs, and ring groups.", no_args_is_help=True)

TRUNK_COLUMNS = ["id", "description", "carrier", "endpoint", "username", "registration"]
NUMBER_COLUMNS = ["block", "type", "carrier", "trunk", "status"]


# ------------------------------------------------------------------ carriers
@carriers_app.command("list")
def carriers_list(as_json: bool = JSON) -> None:
    from kalliope_tel.trunks import services

    rows = in_transaction(lambda s: [services.carrier_fields(c) for c in services.list_carriers(s)])
    if as_json:
        print_json(rows)
    else:
        columns = ["name", "endpoints", "transport", "codecs", "registers"]
        print_table(
            "Carriers", columns, [[", ".join(r[c]) if c == "endpoints" else r[c] for c in columns] for r in rows]
        )


@carriers_app.command("save")
def carriers_save(
    name: str,
    endpoint: list[str] = typer.Option(
        ..., "--endpoint", help="host or host:port; repeat for several (first: default)."
    ),
    transport: str = typer.Option("udp", "--transport", help="udp, tcp or tls."),
    codecs: str = typer.Option("alaw,ulaw", "--codecs"),
    registers: bool = typer.Option(True, "--registers/--no-register", help="Whether trunks register to it."),
    as_json: bool = JSON,
) -> None:
    """Create the carrier, or change the one of that name."""
    from kalliope_tel.trunks import services

    row = in_transaction(
        lambda s: services.carrier_fields(
            services.save_carrier(s, cli_actor(), name, endpoint, transport, codecs, registers)
        )
    )
    done(f"carrier {name} saved", row, as_json)


@carriers_app.command("delete")
def carriers_delete(name: str, as_json: bool = JSON) -> None:
    from kalliope_tel.trunks import services

    in_transaction(lambda s: services.delete_carrier(s, cli_actor(), name))
    done(f"carrier {name} deleted", {"deleted": name}, as_json)


# ------------------------------------------------------------------ trunks
def trunk_rows(session: Session, trunks: list[Any]) -> list[dict[str, Any]]:
    from kalliope_tel.trunks import services
    from kalliope_tel.trunks.registration import trunk_states

    states = trunk_states(STATE.container, trunks)
    return [{**services.trunk_fields(t), "registration": states[t.id]} for t in trunks]


@trunks_app.command("list")
def trunks_list(
    company: int | None = COMPANY,
    search: str = typer.Option("", "--search"),
    carrier: str = typer.Option("", "--carrier", help="Only the trunks of this carrier."),
    as_json: bool = JSON,
) -> None:
    """The company's trunks, with the registration state Asterisk reports now."""
    from kalliope_tel.trunks import services

    rows = in_transaction(
        lambda s: trunk_rows(s, services.search_trunks(services.trunks_of(s, company_of(s, company)), search, carrier))
    )
    if as_json:
        print_json(rows)
    else:
        print_table("SIP trunks", TRUNK_COLUMNS, [[r[c] for c in TRUNK_COLUMNS] for r in rows])


@trunks_app.command("add")
def trunks_add(
    description: str = typer.Option(..., "--description"),
    carrier: str = typer.Option(..., "--carrier"),
    endpoint: str = typer.Option("", "--endpoint", help="One of the carrier's endpoints (default: its first)."),
    auth: bool = typer.Option(True, "--auth/--no-auth", help="Authentication required."),
    username: str = typer.Option("", "--username"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """A new SIP trunk of the company (the password is asked for, never given in argv)."""
    from kalliope_tel.trunks import services

    password = read_secrets(["SIP trunk password"], from_stdin=password_stdin)[0] if auth else ""
    values = {"description": description, "carrier": carrier, "auth_required": auth, "username": username,
              "password": password, **({"endpoint": endpoint} if endpoint else {})}  # fmt: skip
    row = in_transaction(
        lambda s: services.trunk_fields(services.create_trunk(s, cli_actor(), company_of(s, company), **values))
    )
    done(f"SIP trunk {row['id']} created", row, as_json)


@trunks_app.command("delete")
def trunks_delete(trunk: int, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """Refused while numbers use it (they are listed)."""
    from kalliope_tel.trunks import services

    def work(session: Session) -> None:
        owner = company_of(session, company)
        services.delete_trunk(session, cli_actor(), owner, services.trunk_of(session, owner, trunk))

    in_transaction(work)
    done(f"SIP trunk {trunk} deleted", {"deleted": trunk}, as_json)


# ------------------------------------------------------------------ numbers
@numbers_app.command("list")
def numbers_list(
    pbx: str = PBX,
    company: int | None = COMPANY,
    search: str = typer.Option("", "--search"),
    status: str = typer.Option("", "--status", help="active or suspended"),
    sort: str = typer.Option("number", "--sort", help="number, type, carrier or status"),
    descending: bool = typer.Option(False, "--desc"),
    as_json: bool = JSON,
) -> None:
    from kalliope_tel.trunks import numbers

    rows = on_pbx(company, pbx, lambda s, c, p: numbers.list_numbers(s, p, search, status, sort, descending))
    if as_json:
        print_json(rows)
    else:
        print_table(f"Numbers of {pbx}", NUMBER_COLUMNS, [[r[c] for c in NUMBER_COLUMNS] for r in rows])


@numbers_app.command("add")
def numbers_add(
    number: str,
    pbx: str = PBX,
    trunk: int = typer.Option(..., "--trunk", help="The SIP trunk's id."),
    digits: int = typer.Option(0, "--type", help="0: a single number; 1, 2, 3: a block of 10, 100, 1,000."),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    from kalliope_tel.trunks import numbers

    row = on_pbx(
        company,
        pbx,
        lambda s, c, p: numbers.number_fields(s, numbers.create_number(s, cli_actor(), c, p, number, digits, trunk)),
    )
    done(f"number {row['block']} added to {pbx}", row, as_json)


@numbers_app.command("delete")
def numbers_delete(number: str, pbx: str = PBX, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """The number is free again at once."""
    from kalliope_tel.trunks import numbers

    on_pbx(company, pbx, lambda s, c, p: numbers.delete_number(s, cli_actor(), c, p, number))
    done(f"number {number} deleted", {"deleted": number}, as_json)


@numbers_app.command("import")
def numbers_import(
    path: Path,
    pbx: str = PBX,
    company: int | None = COMPANY,
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row, write nothing."),
    as_json: bool = JSON,
) -> None:
    """Numbers from CSV (number,type,trunk): all or none, each refusal named by its line."""
    from kalliope_tel.trunks import numbers_table

    report = on_pbx(
        company, pbx, lambda s, c, p: numbers_table.import_file(s, cli_actor(), c, p, path, dry_run=dry_run)
    )
    done(f"{report['rows']} number(s) {'checked' if dry_run else 'imported'}", report, as_json)


@numbers_app.command("export")
def numbers_export(pbx: str = PBX, company: int | None = COMPANY) -> None:
    from kalliope_tel.trunks import numbers_table

    typer.echo(on_pbx(company, pbx, lambda s, c, p: numbers_table.export(s, p)), nl=False)


# ------------------------------------------------------------------ groups
@groups_app.command("list")
def groups_list(company: int | None = COMPANY, as_json: bool = JSON) -> None:
    from kalliope_tel.groups import services

    rows = in_transaction(
        lambda s: [services.group_fields(s, g) for g in services.groups_of(s, company_of(s, company))]
    )
    if as_json:
        print_json(rows)
    else:
        columns = ["name", "kind", "members", "ring_groups"]
        print_table("Groups", columns, [[", ".join(r[c]) if isinstance(r[c], list) else r[c] for c in columns]
                                        for r in rows])  # fmt: skip


@groups_app.command("add")
def groups_add(
    name: str,
    kind: str = typer.Option(..., "--kind", help="shared (queues, ring groups, BLF) or numbering (one numbering plan)"),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    from kalliope_tel.groups import services

    row = in_transaction(
        lambda s: services.group_fields(s, services.create_group(s, cli_actor(), company_of(s, company), name, kind))
    )
    done(f"group {name} created", row, as_json)


@groups_app.command("join")
def groups_join(
    pbx: str = PBX,
    group: str = typer.Option("", "--group", help="The group's name; empty: leave the group."),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """Put the PBX in a group (or take it out with --group '')."""
    from kalliope_tel.groups import services

    def work(session: Session, owner: Company, target: Any) -> dict[str, Any]:
        chosen = services.group_of(session, owner, group) if group else None
        services.join_group(session, cli_actor(), owner, target, chosen)
        return {"pbx": target.slug, "group": group}

    done(f"{pbx} {'joined ' + group if group else 'left its group'}", on_pbx(company, pbx, work), as_json)


@groups_app.command("ring")
def groups_ring(
    group: str,
    number: str,
    member: list[str] = typer.Option(..., "--member", help="slug/extension of a member PBX; repeat."),
    name: str = typer.Option("", "--name"),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """Create or change a shared group's ring group."""
    from kalliope_tel.groups import services

    members = [tuple(m.split("/", 1)) for m in member]

    def work(session: Session) -> dict[str, Any]:
        chosen = services.group_of(session, company_of(session, company), group)
        services.save_ring_group(session, cli_actor(), chosen, number, name, members)  # type: ignore[arg-type]
        return services.group_fields(session, chosen)

    done(f"ring group {number} of {group} saved", in_transaction(work), as_json)
