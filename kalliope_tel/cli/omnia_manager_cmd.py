"""``kalliope-tel omnia pbxs|extensions``: Omnia Manager from the command
line, through the same services as the web (``omnia.manager``), logged in
the company's Manager log as the operating-system user.

Secrets never come from argv: a service PIN or a chosen SIP password is
read on standard input (``--pin-stdin``, ``--password-stdin``); a generated
SIP password is printed once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import STATE, done, in_transaction, print_json, print_table, read_secrets

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.tenancy.models import Company, Pbx

pbxs_app = typer.Typer(help="A company's PBXs: licences, modules, suspension.", no_args_is_help=True)
extensions_app = typer.Typer(help="A PBX's extensions and licences.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Machine-readable output.")
COMPANY = typer.Option(None, "--company", help="The company's id (default: the installation's partner).")
PBX = typer.Option(..., "--pbx", help="The PBX's slug.")
PIN_STDIN = typer.Option(False, "--pin-stdin", help="Read the service PIN from standard input (a line).")
PBX_COLUMNS = ["number", "slug", "name", "status", "extensions", "numbers", "start_used", "start_licences",
               "plus_used", "plus_licences", "call_centre", "hotel_enabled"]  # fmt: skip
EXT_COLUMNS = ["number", "name", "first_name", "last_name", "email", "licence", "meeting_id", "status"]


def company_of(session: Session, company_id: int | None) -> Company:
    from kalliope_tel.tenancy import companies

    return companies.get_company(session, company_id) if company_id else companies.installation_partner(session)


def cli_actor() -> Any:
    from kalliope_tel.oplog.services import Actor

    return Actor.cli()


def on_pbx(company_id: int | None, slug: str, work: Any) -> Any:
    from kalliope_tel.omnia import manager

    def run(session: Session) -> Any:
        company = company_of(session, company_id)
        return work(session, company, manager.pbx_of(session, company, slug))

    return in_transaction(run)


# ------------------------------------------------------------------ PBXs
@pbxs_app.command("list")
def pbxs_list(company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """The company's PBXs: status, extensions, licences used and purchased."""
    from kalliope_tel.omnia import manager

    rows = in_transaction(lambda s: [manager.pbx_fields(s, p) for p in manager.pbxs_of(s, company_of(s, company))])
    if as_json:
        print_json(rows)
    else:
        print_table("PBXs", PBX_COLUMNS, [[r[c] for c in PBX_COLUMNS] for r in rows])


def _pbx_values(
    name: str | None, timezone: str | None, start: int | None, plus: int | None, call_centre: bool | None,
    hotel: bool | None,
) -> dict[str, Any]:  # fmt: skip
    values = {"name": name, "timezone": timezone, "start_licences": start, "plus_licences": plus,
              "call_centre": call_centre, "hotel_enabled": hotel}  # fmt: skip
    return {k: v for k, v in values.items() if v is not None}


@pbxs_app.command("add")
def pbxs_add(
    slug: str,
    name: str = typer.Option("", "--name"),
    timezone: str = typer.Option("UTC", "--timezone"),
    start: int | None = typer.Option(None, "--start-licences", help="Start licences purchased (none: no limit)."),
    plus: int | None = typer.Option(None, "--plus-licences", help="Plus licences purchased (none: no limit)."),
    call_centre: bool = typer.Option(False, "--call-centre/--no-call-centre"),
    hotel: bool = typer.Option(False, "--hotel/--no-hotel", help="The hotel module."),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """A new PBX of the company; Pending until serve has made it live on its Asterisk."""
    from kalliope_tel.omnia import manager

    values = _pbx_values(name or slug, timezone, start, plus, call_centre, hotel)
    row = in_transaction(
        lambda s: manager.pbx_fields(s, manager.create_pbx(s, cli_actor(), company_of(s, company), slug, **values))
    )
    done(f"PBX {slug} created ({row['status']})", row, as_json)


@pbxs_app.command("update")
def pbxs_update(
    slug: str,
    name: str | None = typer.Option(None, "--name"),
    timezone: str | None = typer.Option(None, "--timezone"),
    start: int | None = typer.Option(None, "--start-licences"),
    plus: int | None = typer.Option(None, "--plus-licences"),
    call_centre: bool | None = typer.Option(None, "--call-centre/--no-call-centre"),
    hotel: bool | None = typer.Option(None, "--hotel/--no-hotel", help="The hotel module."),
    destination: str | None = typer.Option(
        None, "--default-destination", help="The extension a number's call reaches when no extension has its digits."
    ),
    announcement: str | None = typer.Option(
        None, "--suspended-announcement", help="Sound played to callers of its numbers while suspended ('' none)."
    ),
    cause: int | None = typer.Option(None, "--suspended-cause", help="Cause refusing them: 1, 21, 22, 27 or 41."),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """Change a PBX's licences, modules, default destination or how its numbers answer while suspended."""
    from kalliope_tel.omnia import manager

    values = _pbx_values(name, timezone, start, plus, call_centre, hotel)
    extra = {"default_destination": destination, "suspended_announcement": announcement, "suspended_cause": cause}
    values |= {k: v for k, v in extra.items() if v is not None}
    row = on_pbx(
        company, slug, lambda s, c, p: manager.pbx_fields(s, manager.update_pbx(s, cli_actor(), c, p, **values))
    )
    done(f"PBX {slug} updated", row, as_json)


def _suspend(slug: str, company: int | None, suspended: bool, as_json: bool) -> None:
    from kalliope_tel.omnia import manager

    row = on_pbx(
        company, slug, lambda s, c, p: manager.pbx_fields(s, manager.set_pbx_suspended(s, cli_actor(), c, p, suspended))
    )
    done(f"PBX {slug} {'suspended' if suspended else 'resumed'}", row, as_json)


@pbxs_app.command("suspend")
def pbxs_suspend(slug: str, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """Suspend a PBX: its phones are refused, its jobs stop, until it is resumed."""
    _suspend(slug, company, True, as_json)


@pbxs_app.command("resume")
def pbxs_resume(slug: str, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    _suspend(slug, company, False, as_json)


@pbxs_app.command("remove")
def pbxs_remove(
    slug: str,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """Delete a PBX with every row of it and its generated files (serve reloads Asterisk)."""
    from kalliope_tel.omnia import manager
    from kalliope_tel.omnia.generated import forget_pbx_files

    if not yes and not typer.confirm(f"Delete PBX {slug} and all its data?"):
        raise typer.Exit(1)

    def work(session: Session, c: Company, pbx: Pbx) -> Any:
        remove = forget_pbx_files(STATE.settings, [pbx])
        manager.delete_pbx(session, cli_actor(), c, pbx)
        return remove

    removed = on_pbx(company, slug, work)()
    done(f"PBX {slug} deleted", {"deleted": slug, "files_removed": removed}, as_json)


# ------------------------------------------------------------------ extensions
@extensions_app.command("list")
def extensions_list(
    pbx: str = PBX,
    search: str = typer.Option("", "--search", help="In the number, name, the user's name and e-mail."),
    licence: str | None = typer.Option(None, "--licence", help="start or plus"),
    status: str | None = typer.Option(None, "--status", help="active or suspended"),
    sort: str = typer.Option("number", "--sort", help="number, name, licence or status"),
    descending: bool = typer.Option(False, "--desc"),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """The PBX's extensions."""
    from kalliope_tel.extensions.models import ExtensionStatus, Licence
    from kalliope_tel.extensions.services import ExtensionFilter
    from kalliope_tel.omnia import manager

    filters = ExtensionFilter(
        search, Licence(licence) if licence else None, ExtensionStatus(status) if status else None, sort, descending
    )
    rows = on_pbx(company, pbx, lambda s, c, p: manager.list_extensions(s, p, filters))
    if as_json:
        print_json(rows)
    else:
        print_table(f"extensions of {pbx}", EXT_COLUMNS, [[r[c] for c in EXT_COLUMNS] for r in rows])


@extensions_app.command("add")
def extensions_add(
    number: str,
    pbx: str = PBX,
    name: str = typer.Option("", "--name"),
    licence: str = typer.Option("start", "--licence", help="start or plus"),
    user: str = typer.Option("", "--user", help="An existing user of the PBX, for the apps."),
    email: str = typer.Option("", "--email", help="A new user for the apps (invited by mail)."),
    first_name: str = typer.Option("", "--first-name"),
    last_name: str = typer.Option("", "--last-name"),
    pin_stdin: bool = PIN_STDIN,
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """A new extension with its SIP account; the password is printed once."""
    from kalliope_tel.extensions.models import Licence
    from kalliope_tel.omnia import manager

    pin = read_secrets(["service PIN"], from_stdin=True)[0] if pin_stdin else None
    site = STATE.settings.http_public_url or f"http://{STATE.settings.http_bind}"
    who: str | manager.NewUser | None = manager.NewUser(email, first_name, last_name, site) if email else (user or None)

    def work(session: Session, c: Company, p: Pbx) -> dict[str, Any]:
        created = manager.create_extension(
            session, cli_actor(), c, p, number, name=name, licence=Licence(licence), pin=pin, user=who
        )
        return {**manager.extension_fields(session, p, created.extension, pending=True),
                "credentials": created.credentials}  # fmt: skip

    row = on_pbx(company, pbx, work)
    lines = ", ".join(f"{login} / {secret}" for login, secret in row["credentials"].items())
    done(f"extension {number} created; SIP account (shown once): {lines}", row, as_json)


@extensions_app.command("update")
def extensions_update(
    number: str,
    pbx: str = PBX,
    name: str | None = typer.Option(None, "--name"),
    licence: str | None = typer.Option(None, "--licence", help="start or plus"),
    user: str | None = typer.Option(None, "--user", help="A user of the PBX ('' to unlink)."),
    directory: str | None = typer.Option(
        None, "--directory", help="How it is published: none, basic (number and name), full (and its user's details)."
    ),
    phonebook: bool | None = typer.Option(None, "--phonebook/--no-phonebook", help="In the phones' XML phonebook."),
    pin_stdin: bool = PIN_STDIN,
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """Change an extension's name, licence, user, directory publishing or service PIN."""
    from kalliope_tel.extensions.models import DirectoryMode, Licence
    from kalliope_tel.omnia import manager

    pin = read_secrets(["service PIN"], from_stdin=True)[0] if pin_stdin else None
    mode = DirectoryMode(directory) if directory else None

    def work(session: Session, c: Company, p: Pbx) -> dict[str, Any]:
        ext = manager.update_extension(
            session, cli_actor(), c, p, number, name=name, licence=Licence(licence) if licence else None, pin=pin,
            user=user or None, clear_user=user == "", directory_mode=mode, show_in_phonebook=phonebook,
        )  # fmt: skip
        return manager.extension_fields(session, p, ext)

    done(f"extension {number} updated", on_pbx(company, pbx, work), as_json)


def _status(number: str, pbx: str, company: int | None, suspended: bool, as_json: bool) -> None:
    from kalliope_tel.extensions.models import ExtensionStatus
    from kalliope_tel.omnia import manager

    status = ExtensionStatus.SUSPENDED if suspended else ExtensionStatus.ACTIVE

    def work(session: Session, c: Company, p: Pbx) -> dict[str, Any]:
        return manager.extension_fields(
            session, p, manager.set_extension_status(session, cli_actor(), c, p, number, status)
        )

    done(f"extension {number} {status.value}", on_pbx(company, pbx, work), as_json)


@extensions_app.command("suspend")
def extensions_suspend(number: str, pbx: str = PBX, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """Suspend: its phones can neither register nor call, calls to it are refused."""
    _status(number, pbx, company, True, as_json)


@extensions_app.command("resume")
def extensions_resume(number: str, pbx: str = PBX, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    _status(number, pbx, company, False, as_json)


@extensions_app.command("password")
def extensions_password(number: str, pbx: str = PBX, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """New SIP passwords for the extension's accounts (printed once; the old ones stop working)."""
    from kalliope_tel.omnia import manager

    secrets = on_pbx(company, pbx, lambda s, c, p: manager.new_passwords(s, cli_actor(), c, p, number))
    lines = ", ".join(f"{login} / {secret}" for login, secret in secrets.items())
    done(f"new SIP password(s) (shown once): {lines}", {"credentials": secrets}, as_json)


@extensions_app.command("remove")
def extensions_remove(number: str, pbx: str = PBX, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """Delete the extension: its accounts, PIN and hint go, the number is free at once."""
    from kalliope_tel.omnia import manager

    on_pbx(company, pbx, lambda s, c, p: manager.delete_extension(s, cli_actor(), c, p, number))
    done(f"extension {number} deleted", {"deleted": number}, as_json)


@extensions_app.command("export")
def extensions_export(pbx: str = PBX, company: int | None = COMPANY) -> None:
    """The PBX's extensions as CSV on standard output."""
    import sys

    from kalliope_tel.omnia import extensions_table

    sys.stdout.write(on_pbx(company, pbx, lambda s, c, p: extensions_table.export(s, p)))


@extensions_app.command("import")
def extensions_import(
    path: Path,
    pbx: str = PBX,
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row, write nothing."),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """Import extensions from CSV or XLSX: all or nothing, every refusal by line.
    The new SIP passwords are printed once."""
    from kalliope_tel.cli.context import fail
    from kalliope_tel.omnia import extensions_table
    from kalliope_tel.tables import ImportRefused

    if path.stat().st_size > extensions_table.MAX_BYTES:
        raise fail(f"{path}: larger than {extensions_table.MAX_BYTES >> 20} MiB")
    try:
        report = on_pbx(company, pbx, lambda s, c, p: extensions_table.import_file(s, cli_actor(), c, p, path,
                                                                                    dry_run=dry_run))  # fmt: skip
    except ImportRefused as exc:
        if as_json:
            print_json({"error": str(exc), "rows": [{"line": n, "column": col, "error": str(e)}
                                                     for n, col, e in exc.items]})  # fmt: skip
        else:
            for line, _column, error in exc.items[:50]:
                typer.echo(f"line {line}: {error}", err=True)
        raise fail(str(exc)) from None
    done(f"{report.created} extension(s) {'checked' if dry_run else 'created'}", report.as_dict(), as_json)
