"""``kalliope-tel directory up|down|status|resync|show``: the embedded slapd,
whether the directory equals the store, a full resync, and what a PBX's
phones are configured with (their bind DN and password: asked for, printed
once on standard output, never logged)."""

from __future__ import annotations

from typing import Any

import typer

from kalliope_tel.cli.context import STATE, done, fail, print_json, print_table

app = typer.Typer(help="The directory phones search: LDAP (slapd) and XML phonebooks.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Machine-readable output.")


@app.command("up")
def up(as_json: bool = JSON) -> None:
    """Start the embedded slapd (on loopback, in its own data directory)."""
    from kalliope_tel.directory.slapd import Slapd
    from kalliope_tel.directory.sync import embedded_dir

    if STATE.settings.directory_url:
        raise fail("directory_url is set: an existing directory is used, nothing to start")
    state = Slapd(embedded_dir(STATE.container)).start(STATE.settings.directory_base_dn)
    done(f"directory up on {state.url} ({state.base_dn})", {"url": state.url, "base_dn": state.base_dn}, as_json)


@app.command("down")
def down(as_json: bool = JSON) -> None:
    from kalliope_tel.directory.slapd import Slapd
    from kalliope_tel.directory.sync import embedded_dir

    stopped = Slapd(embedded_dir(STATE.container)).stop()
    done("directory stopped" if stopped else "the directory was not running", {"stopped": stopped}, as_json)


@app.command("status")
def status(as_json: bool = JSON) -> None:
    """Per PBX: entries wanted by the store, held in LDAP, and the drift."""
    from kalliope_tel.directory.status import status as read

    found = read(STATE.container)
    if as_json:
        print_json(found)
    else:
        typer.echo(f"{found['url'] or '-'}: {'reachable' if found['reachable'] else found['error']}")
        rows = [[r["pbx"], r["wanted"], r["held"], "yes" if r["in_step"] else str(r["drift"])] for r in found["pbxs"]]
        print_table("Directory", ["pbx", "wanted", "held", "in step"], rows)
    if not found["reachable"] or not all(r["in_step"] for r in found["pbxs"]):
        raise typer.Exit(1)


@app.command("resync")
def resync(as_json: bool = JSON) -> None:
    """Bring every PBX's subtree to the store now; report what changed."""
    from kalliope_tel.directory.feature import rooms_lender
    from kalliope_tel.directory.sync import DirectorySync

    sync = DirectorySync(STATE.container, rooms_lender(STATE.container), None)
    try:
        changed = sync.resync()
    finally:
        sync.close()
    done(f"directory resynced: {len(changed)} PBX(s) changed", {"changed": changed}, as_json)


@app.command("show")
def show(
    pbx: str = typer.Option(..., "--pbx", help="The PBX's slug."),
    credentials: bool = typer.Option(False, "--credentials", help="Also print the phones' password (once)."),
    as_json: bool = JSON,
) -> None:
    """What a PBX publishes, and how its phones reach the directory."""
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.directory.entries import directory_of
    from kalliope_tel.directory.feature import rooms_lender
    from kalliope_tel.directory.link import phones_dn
    from kalliope_tel.directory.phonebooks import FORMATS
    from kalliope_tel.directory.slapd import phones_password
    from kalliope_tel.directory.sync import target_of
    from kalliope_tel.tenancy.services import get_pbx

    target = target_of(STATE.container)
    if target is None:
        raise fail("no directory: 'kalliope-tel directory up' or set directory_url")
    with transaction(STATE.container.sessions, read_only=True) as session:
        found = get_pbx(session, pbx)
        rows = [e.__dict__ for e in directory_of(session, found, rooms_lender(STATE.container))]
    books = [f"/directory/{pbx}/{kind}.xml" for kind in FORMATS]
    out: dict[str, Any] = {"url": target.url, "bind_dn": phones_dn(target.base_dn, pbx), "entries": rows,
                           "phonebooks": books}  # fmt: skip
    if credentials:
        out["password"] = phones_password(target.phones_secret, pbx)
    if as_json:
        print_json(out)
        return
    typer.echo(f"{out['url']} bind as {out['bind_dn']}" + (f" password {out['password']}" if credentials else ""))
    columns = ["number", "name", "ldap", "phonebook", "mail", "department"]
    print_table(f"Directory of {pbx}", columns, [[r[c] for c in columns] for r in rows])
