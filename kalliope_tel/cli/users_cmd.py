"""``kalliope-tel users``: the people of a PBX (fax instances, later the web)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import STATE, console, done, print_json, print_table, run_in_pbx

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.oplog.services import Actor
    from kalliope_tel.tenancy.models import Pbx
    from kalliope_tel.users import services
else:
    from kalliope_tel.lazy import LazyModule

    services = LazyModule("kalliope_tel.users.services")

app = typer.Typer(help="Users of a PBX: name and e-mail (unique across all PBXs).", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _cli() -> Actor:
    from kalliope_tel.oplog.services import Actor

    return Actor.cli()


@app.callback()
def users_main(pbx: str = typer.Option(None, "--pbx", help="PBX slug (default: the default PBX).")) -> None:
    STATE.pbx_slug = pbx


@app.command("add")
def add_cmd(
    name: str = typer.Argument(..., help="Login-style name (letters, digits, _ and -)."),
    email: str = typer.Option(..., "--email", help="E-mail address (unique across all PBXs, case-sensitive)."),
    full_name: str = typer.Option("", "--full-name"),
    as_json: bool = JSON,
) -> None:
    """Add a user."""

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        data = services.as_dict(services.add_user(session, pbx, name, email, full_name))
        services.logged(session, _cli(), pbx, "log.pbx_user_added", name, None, data)
        return data

    data = run_in_pbx(work)
    if as_json:
        print_json(data)
    else:
        console.print(f"user {data['name']} added ({data['email']})")


@app.command("list")
def list_cmd(as_json: bool = JSON) -> None:
    """The PBX's users."""
    rows = run_in_pbx(lambda s, p: [services.as_dict(u) for u in services.list_users(s, p)])
    if as_json:
        print_json(rows)
    else:
        print_table(
            "users",
            ["name", "e-mail", "full name", "web roles"],
            [[r["name"], r["email"], r["full_name"], ", ".join(r["roles"])] for r in rows],
        )


@app.command("show")
def show_cmd(name: str, as_json: bool = JSON) -> None:
    """One user, with their fax permissions."""

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        from sqlalchemy import select

        from kalliope_tel.fax.models import FaxInstance, InstanceUser

        user = services.get_user(session, pbx, name)
        perms = session.execute(
            select(FaxInstance.name, InstanceUser.permission)
            .join(InstanceUser, InstanceUser.instance_id == FaxInstance.id)
            .where(InstanceUser.user_id == user.id)
            .order_by(FaxInstance.name)
        ).all()
        return services.as_dict(user) | {"fax": {n: p.value for n, p in perms}}

    data = run_in_pbx(work)
    if as_json:
        print_json(data)
    else:
        print_table(f"user {name}", ["field", "value"], [[k, v] for k, v in data.items()])


@app.command("remove")
def remove_cmd(name: str, as_json: bool = JSON) -> None:
    """Remove a user (their faxes stay in the register)."""

    def work(session: Session, pbx: Pbx) -> None:
        before = services.as_dict(services.get_user(session, pbx, name))
        services.remove_user(session, pbx, name)
        services.logged(session, _cli(), pbx, "log.pbx_user_removed", name, before, None)

    run_in_pbx(work)
    if as_json:
        print_json({"removed": name})
    else:
        console.print(f"user {name} removed")


@app.command("pgp-key")
def pgp_key_cmd(
    name: str,
    key_file: Path | None = typer.Argument(None, help="The user's armored public key."),
    remove: bool = typer.Option(False, "--remove", help="Remove the user's key."),
    as_json: bool = JSON,
) -> None:
    """Set the user's PGP public key (Mail2Fax instances with PGP-signature authentication)."""
    from kalliope_tel.errors import KalliopeError
    from kalliope_tel.mail2fax.pgp import key_fingerprint

    if (key_file is None) == (not remove):
        raise KalliopeError("give a key file, or --remove")
    armored = "" if remove or key_file is None else key_file.read_text()
    fingerprint = key_fingerprint(armored, secret=False) if armored else ""

    def work(session: Session, pbx: Pbx) -> dict[str, Any]:
        user = services.get_user(session, pbx, name)
        before = {"pgp_fingerprint": user.pgp_fingerprint}
        user.pgp_public_key, user.pgp_fingerprint = armored, fingerprint
        services.logged(session, _cli(), pbx, "log.pbx_user_pgp", name, before, {"pgp_fingerprint": fingerprint})
        return {"name": user.name, "pgp_fingerprint": fingerprint}

    data = run_in_pbx(work)
    if as_json:
        print_json(data)
    else:
        console.print(f"user {name}: " + (f"PGP key {fingerprint}" if fingerprint else "PGP key removed"))


@app.command("passwd")
def passwd_cmd(
    name: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    remove: bool = typer.Option(False, "--remove", help="Remove the password: the user can no longer log in."),
    as_json: bool = JSON,
) -> None:
    """Set the user's web password (typed at a hidden prompt, or on standard input;
    never in argv). Their open web sessions end."""
    from kalliope_tel.cli.context import read_secrets

    password = "" if remove else read_secrets([f"password for {name}"], from_stdin=password_stdin)[0]
    if not remove and not password:
        raise typer.BadParameter("empty password (use --remove to take the password away)")

    def work(session: Session, pbx: Pbx) -> None:
        services.set_password(session, pbx, name, password)
        services.logged(session, _cli(), pbx, "log.pbx_user_password", name, None, {"password": bool(password)})

    run_in_pbx(work)
    done(
        f"user {name}: " + ("password removed" if remove else "password set"),
        {"name": name, "password": not remove},
        as_json,
    )


@app.command("roles")
def roles_cmd(
    name: str,
    roles: list[str] = typer.Argument(None, help="admin, receptionist, fax, lam (none: show the user's roles)."),
    add: bool = typer.Option(False, "--add", help="Add these roles to the user's."),
    remove: bool = typer.Option(False, "--remove", help="Take these roles away."),
    as_json: bool = JSON,
) -> None:
    """Show or set the user's web roles in their PBX (given roles replace the
    user's, unless --add or --remove). Taking a role away ends their sessions."""
    from kalliope_tel.errors import KalliopeError
    from kalliope_tel.users.models import Role

    if add and remove:
        raise KalliopeError("--add or --remove, not both")
    try:
        wanted = {Role(r) for r in roles or []}
    except ValueError:
        raise KalliopeError(f"roles are {', '.join(r.value for r in Role)}") from None

    def work(session: Session, pbx: Pbx) -> list[str]:
        user = services.get_user(session, pbx, name)
        if roles:
            current = user.role_set
            target = current | wanted if add else (current - wanted if remove else wanted)
            user = services.set_roles(session, pbx, name, set(target))
            services.logged(session, _cli(), pbx, "log.pbx_user_updated", name, {"roles": sorted(current)},
                            {"roles": sorted(user.role_set)})  # fmt: skip
        return sorted(user.role_set)

    result = run_in_pbx(work)
    done(f"user {name}: roles {', '.join(result) or '(none)'}", {"name": name, "roles": result}, as_json)
