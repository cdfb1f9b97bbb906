"""``kalliope-tel pbx add|list|show|update|remove`` and ``pbx servers ...``.

A PBX is a tenant: its rooms, accounts, alarms and generated Asterisk
configuration are its own. It lives on the default Asterisk or on a server
added with ``pbx servers add``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import console, in_transaction, print_json, print_table, read_secrets

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.tenancy.models import AsteriskServer, Pbx

app = typer.Typer(help="PBXs (tenants) and the Asterisk servers they live on.", no_args_is_help=True)
servers = typer.Typer(help="Asterisk servers PBXs can be bound to.", no_args_is_help=True)
app.add_typer(servers, name="servers")

JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _pbx_row(session: Session, pbx: Pbx) -> dict[str, Any]:
    from sqlalchemy import func, select

    from kalliope_tel.extensions.models import SipAccount
    from kalliope_tel.hotel.models import Room

    def count(model: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(model.pbx_id == pbx.id)) or 0)

    return {
        "slug": pbx.slug,
        "name": pbx.name,
        "default": pbx.is_default,
        "timezone": pbx.timezone,
        "asterisk": pbx.asterisk_name or "default",
        "company": pbx.company_id,
        "rooms": count(Room),
        "sip_accounts": count(SipAccount),
        "created_at": pbx.created_at.isoformat(),
    }


def _show(row: dict[str, Any], as_json: bool, verb: str = "") -> None:
    if as_json:
        print_json(row)
        return
    if verb:
        console.print(f"{verb} PBX {row['slug']}", highlight=False, markup=False)
    for key, value in row.items():
        console.print(f"  {key:<13} {value}", highlight=False, markup=False)


@app.command("add")
def add(
    slug: str = typer.Argument(..., help="Short name used in Asterisk (lower-case letters, digits, _)."),
    name: str = typer.Option("", "--name", help="Display name."),
    timezone: str = typer.Option("UTC", "--timezone", help="The PBX's time zone, e.g. Europe/Rome."),
    asterisk: str = typer.Option("", "--asterisk", help="Asterisk server it lives on (default: the default one)."),
    company: int | None = typer.Option(None, "--company", help="The company it belongs to (default: the partner's)."),
    as_json: bool = JSON,
) -> None:
    """Add a PBX."""
    from kalliope_tel.tenancy.companies import get_company
    from kalliope_tel.tenancy.services import create_pbx

    def work(session: Session) -> dict[str, Any]:
        owner = get_company(session, company) if company else None
        return _pbx_row(session, create_pbx(session, slug, name, timezone, asterisk or None, owner))

    row = in_transaction(work)
    _show(row, as_json, "added")


@app.command("list")
def list_cmd(as_json: bool = JSON) -> None:
    """Every PBX, with its Asterisk and sizes."""
    from kalliope_tel.tenancy.services import list_pbxs

    rows = in_transaction(lambda s: [_pbx_row(s, p) for p in list_pbxs(s)])
    if as_json:
        print_json(rows)
        return
    print_table(
        "PBXs",
        ["slug", "name", "asterisk", "timezone", "rooms", "accounts"],
        [[r["slug"], r["name"], r["asterisk"], r["timezone"], r["rooms"], r["sip_accounts"]] for r in rows],
    )


@app.command("show")
def show(slug: str, as_json: bool = JSON) -> None:
    """One PBX."""
    from kalliope_tel.tenancy.services import get_pbx

    _show(in_transaction(lambda s: _pbx_row(s, get_pbx(s, slug))), as_json)


@app.command("update")
def update(
    slug: str,
    name: str | None = typer.Option(None, "--name"),
    timezone: str | None = typer.Option(None, "--timezone"),
    asterisk: str | None = typer.Option(None, "--asterisk", help="Server name; '' for the default Asterisk."),
    as_json: bool = JSON,
) -> None:
    """Rename a PBX, change its time zone or move it to another Asterisk (then 'asterisk apply')."""
    from kalliope_tel.tenancy.services import update_pbx

    row = in_transaction(lambda s: _pbx_row(s, update_pbx(s, slug, name=name, timezone=timezone, asterisk=asterisk)))
    _show(row, as_json, "updated")


@app.command("remove")
def remove(
    slug: str,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    as_json: bool = JSON,
) -> None:
    """Remove a PBX with everything it owns, and its generated files from its Asterisk."""
    from kalliope_tel.cli.asterisk_cmd import where
    from kalliope_tel.tenancy.services import get_pbx, remove_pbx

    def plan(session: Session) -> tuple[Any, Any, dict[str, Any]]:
        pbx = get_pbx(session, slug)
        return (*where(pbx), _pbx_row(session, pbx))

    target, endpoints, row = in_transaction(plan)
    if not yes and not typer.confirm(f"Remove PBX {slug} with its {row['rooms']} room(s) and all its data?"):
        raise typer.Exit(1)
    in_transaction(lambda s: remove_pbx(s, slug))
    removed, reloaded = remove_generated(slug, target, endpoints)
    if as_json:
        print_json({"removed": slug, "files": removed, "reloaded": reloaded})
    else:
        console.print(f"removed PBX {slug}" + (f" and {', '.join(removed)}" if removed else ""), highlight=False)


def remove_generated(slug: str, target: Any, endpoints: Any) -> tuple[list[str], bool]:
    """A removed PBX's generated files off its Asterisk, and the reload:
    (the files that existed, whether Asterisk was reloaded)."""
    from kalliope_tel.asterisk.apply import remove_files
    from kalliope_tel.cli.asterisk_cmd import reload_through_ami
    from kalliope_tel.dialplan.generator import dialplan_file, pjsip_file
    from kalliope_tel.errors import KalliopeError

    removed = remove_files(target.directory, [dialplan_file(slug), pjsip_file(slug)])
    if not removed or endpoints is None:
        return removed, False
    try:
        asyncio.run(reload_through_ami(endpoints, removed))
        return removed, True
    except (KalliopeError, OSError) as exc:
        console.print(f"removed files, but Asterisk was not reloaded: {exc}", highlight=False, markup=False)
        return removed, False


# ------------------------------------------------------------------ servers
def _server_row(server: AsteriskServer) -> dict[str, Any]:
    from kalliope_tel.config import SECRET_MASK

    return {
        "name": server.name,
        "lab": server.lab_name,
        "ari_url": server.ari_url,
        "ari_username": server.ari_username,
        "ari_password": SECRET_MASK if server.ari_password else "",
        "ami_url": server.ami_url,
        "ami_username": server.ami_username,
        "ami_password": SECRET_MASK if server.ami_password else "",
        "config_dir": server.config_dir,
        "device_template": server.device_template,
    }


@servers.command("add")
def servers_add(
    name: str,
    lab: str = typer.Option("", "--lab", help="A lab Asterisk by name (kalliope-tel lab up, KALLIOPE_LAB_NAME)."),
    ari_url: str = typer.Option("", "--ari-url"),
    ari_username: str = typer.Option("", "--ari-username"),
    ami_url: str = typer.Option("", "--ami-url", help="tcp://HOST:5038"),
    ami_username: str = typer.Option("", "--ami-username"),
    config_dir: str = typer.Option("", "--config-dir", help="Where 'asterisk apply' writes (its /etc/asterisk)."),
    device_template: str = typer.Option("", "--device-template"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the ARI then the AMI password, one line each, from standard input."
    ),
    as_json: bool = JSON,
) -> None:
    """Add an Asterisk server (passwords are asked for, never given in argv)."""
    from kalliope_tel.tenancy.services import ServerValues, add_asterisk_server

    ari_password = ami_password = ""
    if not lab:
        ari_password, ami_password = read_secrets(["ARI password", "AMI password"], from_stdin=password_stdin)
    values = ServerValues(
        lab, ari_url, ari_username, ari_password, ami_url, ami_username, ami_password, config_dir, device_template
    )
    row = in_transaction(lambda s: _server_row(add_asterisk_server(s, name, values)))
    if as_json:
        print_json(row)
    else:
        console.print(f"added Asterisk server {name}", highlight=False)


@servers.command("list")
def servers_list(as_json: bool = JSON) -> None:
    """Asterisk servers (passwords masked)."""
    from kalliope_tel.tenancy.services import list_asterisk_servers

    rows = in_transaction(lambda s: [_server_row(x) for x in list_asterisk_servers(s)])
    if as_json:
        print_json(rows)
        return
    print_table(
        "Asterisk servers",
        ["name", "lab", "ARI", "AMI", "config dir"],
        [[r["name"], r["lab"], r["ari_url"], r["ami_url"], r["config_dir"]] for r in rows],
    )


@servers.command("remove")
def servers_remove(name: str, as_json: bool = JSON) -> None:
    """Remove an Asterisk server no PBX is bound to."""
    from kalliope_tel.tenancy.services import remove_asterisk_server

    in_transaction(lambda s: remove_asterisk_server(s, name))
    if as_json:
        print_json({"removed": name})
    else:
        console.print(f"removed Asterisk server {name}", highlight=False)
