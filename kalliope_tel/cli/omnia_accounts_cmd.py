"""``kalliope-tel omnia accounts|log``: the people of a company (Console
and Manager members) and the log of operations, from the command line.

Members are invited: the account waits for its password, which the person
chooses from the link in the invitation mail (serve sends it). Every change
is in the log, done by the operating-system user.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import STATE, console, in_transaction, print_json, print_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.accounts.models import Account
    from kalliope_tel.tenancy.models import Company

accounts_app = typer.Typer(help="A company's users (Console and Manager members).", no_args_is_help=True)
log_app = typer.Typer(help="The log of operations.", invoke_without_command=True)

JSON = typer.Option(False, "--json", help="Machine-readable output.")
COMPANY = typer.Option(None, "--company", help="The company's id (default: the installation's partner).")
CONSOLE = typer.Option(None, "--console", help="Console role: admin or read_only.")
MANAGER = typer.Option(None, "--manager", help="Manager role: admin or read_only.")


def _company(session: Session, company_id: int | None) -> Company:
    from kalliope_tel.tenancy import companies

    return companies.get_company(session, company_id) if company_id else companies.installation_partner(session)


def _member(session: Session, company: Company, email: str) -> Account:
    from kalliope_tel.accounts.services import AccountNotFound, find_account, membership

    account = find_account(session, email)
    if account is None or membership(session, account.id, company.id) is None:
        raise AccountNotFound("account.not_found", id=email)
    return account


def _site() -> str:
    """Where the invitation link points: http_public_url, else the address serve listens on."""
    return STATE.settings.http_public_url or f"http://{STATE.settings.http_bind}"


@accounts_app.command("list")
def accounts_list(company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """The company's users."""
    from kalliope_tel.omnia import console as omnia

    rows = in_transaction(
        lambda s: [omnia.member_fields(a, m) for a, m in omnia.accounts_of(s, _company(s, company).id)]
    )
    if as_json:
        print_json(rows)
        return
    columns = ["id", "email", "first_name", "last_name", "console_role", "manager_role", "status", "second_factor"]
    print_table("users", columns, [[r[c] for c in columns] for r in rows])


@accounts_app.command("invite")
def accounts_invite(
    email: str,
    first_name: str = typer.Option("", "--first-name"),
    last_name: str = typer.Option("", "--last-name"),
    department: str = typer.Option("", "--department"),
    console_role: str | None = CONSOLE,
    manager_role: str | None = MANAGER,
    customers: bool = typer.Option(False, "--manage-customers", help="May create, suspend and delete customers."),
    lang: str = typer.Option("it", "--lang", help="The invitation's language (it or en)."),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """Invite a new user: a mail with a link (valid 72 hours) to choose a password."""
    from kalliope_tel.accounts.models import ConsoleRole, ManagerRole
    from kalliope_tel.omnia import console as omnia
    from kalliope_tel.oplog.services import Actor

    def work(session: Session) -> dict[str, Any]:
        owner = _company(session, company)
        account = omnia.invite(
            session, Actor.cli(), owner, email=email, first_name=first_name, last_name=last_name,
            department=department, console=ConsoleRole(console_role) if console_role else None,
            manager=ManagerRole(manager_role) if manager_role else None, manage_customers=customers,
            site=_site(), lang=lang,
        )  # fmt: skip
        return omnia.member_fields(*omnia.find_member(session, owner, account.id))

    row = in_transaction(work)
    print_json(row) if as_json else console.print(f"invited {row['email']} (user {row['id']})", highlight=False)


def _act(email: str, company: int | None, what: str, as_json: bool) -> None:
    from kalliope_tel.accounts.models import AccountStatus
    from kalliope_tel.omnia import console as omnia
    from kalliope_tel.oplog.services import Actor

    def work(session: Session) -> dict[str, Any]:
        owner = _company(session, company)
        account = _member(session, owner, email)
        if what == "reset-second-factor":
            omnia.reset_second_factor(session, Actor.cli(), owner, account)
        elif what == "resend":
            omnia.resend_invite(session, Actor.cli(), owner, account, site=_site(), lang="it")
        elif what == "remove":
            omnia.remove_member(session, Actor.cli(), owner, account)
            return {"email": email, "removed": True}
        else:
            status = AccountStatus.SUSPENDED if what == "suspend" else AccountStatus.ACTIVE
            omnia.set_account_status(session, Actor.cli(), owner, account, status)
        return omnia.member_fields(*omnia.find_member(session, owner, account.id))

    row = in_transaction(work)
    print_json(row) if as_json else console.print(f"{email}: {what} done", highlight=False)


@accounts_app.command("reset-second-factor")
def accounts_reset(email: str, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """Forget the user's second factor: they enrol again at their next login."""
    _act(email, company, "reset-second-factor", as_json)


@accounts_app.command("resend")
def accounts_resend(email: str, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """Send the invitation again (the earlier link stops working)."""
    _act(email, company, "resend", as_json)


@accounts_app.command("suspend")
def accounts_suspend(email: str, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """The user may not log in until resumed; their sessions end."""
    _act(email, company, "suspend", as_json)


@accounts_app.command("resume")
def accounts_resume(email: str, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    _act(email, company, "resume", as_json)


@accounts_app.command("remove")
def accounts_remove(email: str, company: int | None = COMPANY, as_json: bool = JSON) -> None:
    """The user leaves the company (the account goes when nothing else is left)."""
    _act(email, company, "remove", as_json)


@log_app.callback()
def log_list(
    company: int | None = COMPANY,
    limit: int = typer.Option(50, "--limit", min=1, max=5000),
    as_json: bool = JSON,
) -> None:
    """The newest entries of a company's log."""
    from kalliope_tel.oplog import services as oplog

    rows = in_transaction(
        lambda s: [oplog.as_dict(e) for e in oplog.entries(s, {_company(s, company).id}, limit=limit)]
    )
    if as_json:
        print_json(rows)
        return
    columns = ["at", "operation", "object", "actor", "via", "ip"]
    print_table("log", columns, [[r[c] for c in columns] for r in rows])


@accounts_app.command("export")
def accounts_export(company: int | None = COMPANY) -> None:
    """The company's users as CSV on standard output (the columns the import reads)."""
    from kalliope_tel.omnia import users_csv

    typer.echo(in_transaction(lambda s: users_csv.export(s, _company(s, company))), nl=False)


@accounts_app.command("import")
def accounts_import(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and report, writing nothing."),
    lang: str = typer.Option("it", "--lang", help="The invitations' language (it or en)."),
    company: int | None = COMPANY,
    as_json: bool = JSON,
) -> None:
    """Import users from CSV: all rows or none (every error listed by line and column)."""
    from kalliope_tel.files import decode_text, read_bounded
    from kalliope_tel.omnia import users_csv
    from kalliope_tel.oplog.services import Actor
    from kalliope_tel.tables import ImportRefused

    with path.open("rb") as stream:
        data = read_bounded(stream, users_csv.MAX_BYTES)
    if data is None:
        raise ImportRefused("csv.too_large", limit=users_csv.MAX_BYTES >> 10)

    def work(session: Session) -> dict[str, Any]:
        report = users_csv.import_users(
            session, Actor.cli(), _company(session, company), decode_text(data), dry_run=dry_run, site=_site(),
            lang=lang,
        )  # fmt: skip
        return report.as_dict()

    try:
        row = in_transaction(work)
    except ImportRefused as exc:
        for line, column, error in exc.items:
            typer.echo(f"line {line}, column {column}: {error}", err=True)
        raise
    if as_json:
        print_json(row)
    else:
        what = "would be" if dry_run else "were"
        console.print(f"{row['created']} created, {row['updated']} updated, {row['unchanged']} unchanged "
                      f"({what} written)", highlight=False)  # fmt: skip
