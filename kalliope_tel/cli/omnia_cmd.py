"""``kalliope-tel omnia companies|customers``: the installation's partners
and their customers (Omnia's Admin Console, from the command line);
``omnia pbxs|extensions`` are the Manager's (``omnia_manager_cmd``).

A customer's company data is checked as the web checks it (VAT number and
fiscal code by python-stdnum); deleting a customer deletes its PBXs, every
row of theirs, and their generated Asterisk files. Every change is in the
log of operations, done by the operating-system user (marked "os").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from kalliope_tel.cli.context import console, in_transaction, print_json, print_table
from kalliope_tel.cli.omnia_accounts_cmd import accounts_app, log_app
from kalliope_tel.cli.omnia_manager_cmd import extensions_app, pbxs_app
from kalliope_tel.cli.omnia_trunks_cmd import carriers_app, groups_app, numbers_app, trunks_app

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.oplog.services import Actor
    from kalliope_tel.tenancy.models import Company

app = typer.Typer(help="Omnia: partners, their customers and the customers' PBXs.", no_args_is_help=True)
companies_app = typer.Typer(help="The installation's partners.", no_args_is_help=True)
customers_app = typer.Typer(help="A partner's customers.", no_args_is_help=True)
app.add_typer(companies_app, name="companies")
app.add_typer(customers_app, name="customers")
app.add_typer(accounts_app, name="accounts")
app.add_typer(log_app, name="log")
app.add_typer(pbxs_app, name="pbxs")
app.add_typer(extensions_app, name="extensions")
app.add_typer(carriers_app, name="carriers")
app.add_typer(trunks_app, name="trunks")
app.add_typer(numbers_app, name="numbers")
app.add_typer(groups_app, name="groups")

JSON = typer.Option(False, "--json", help="Machine-readable output.")
PARTNER = typer.Option(None, "--partner", help="The partner's id (default: the installation's partner).")


def company_row(session: Session, company: Company) -> dict[str, Any]:
    from kalliope_tel.omnia.console import company_fields

    return company_fields(session, company)


def _cli() -> Actor:
    from kalliope_tel.oplog.services import Actor

    return Actor.cli()


def _show(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        print_json(rows)
        return
    columns = ["id", "legal_name", "customer_code", "vat_number", "fiscal_code", "status", "pbxs"]
    print_table(title, columns, [[r[c] for c in columns] for r in rows])


def _partner(session: Session, partner_id: int | None) -> Company:
    from kalliope_tel.tenancy import companies

    return companies.get_company(session, partner_id) if partner_id else companies.installation_partner(session)


@companies_app.command("list")
def companies_list(as_json: bool = JSON) -> None:
    """The partners."""
    from kalliope_tel.tenancy import companies

    rows = in_transaction(lambda s: [company_row(s, c) for c in companies.partners(s)])
    _show(rows, as_json, "partners")


@companies_app.command("add")
def companies_add(
    legal_name: str,
    vat: str = typer.Option("", "--vat", help="Partita IVA."),
    fiscal: str = typer.Option("", "--fiscal-code", help="Codice fiscale."),
    as_json: bool = JSON,
) -> None:
    """Add a partner (a provider running its own customers)."""
    from kalliope_tel.tenancy import companies

    def work(session: Session) -> dict[str, Any]:
        from kalliope_tel.oplog.services import record

        made = companies.create_partner(session, legal_name, vat=vat, fiscal=fiscal)
        row = company_row(session, made)
        record(session, _cli(), "log.partner_created", "partner", made.legal_name, company_id=made.id, after=row)
        return row

    row = in_transaction(work)
    print_json(row) if as_json else console.print(f"partner {row['id']}: {row['legal_name']}", highlight=False)


@customers_app.command("list")
def customers_list(partner: int | None = PARTNER, as_json: bool = JSON) -> None:
    """A partner's customers."""
    from kalliope_tel.tenancy import companies

    rows = in_transaction(lambda s: [company_row(s, c) for c in companies.customers_of(s, _partner(s, partner))])
    _show(rows, as_json, "customers")


@customers_app.command("add")
def customers_add(
    legal_name: str,
    code: str = typer.Option("", "--code", help="Customer code (unique among the partner's customers)."),
    vat: str = typer.Option("", "--vat", help="Partita IVA."),
    fiscal: str = typer.Option("", "--fiscal-code", help="Codice fiscale."),
    manager: bool = typer.Option(True, "--manager/--no-manager", help="The Omnia Manager service."),
    partner: int | None = PARTNER,
    as_json: bool = JSON,
) -> None:
    """Add a customer to a partner."""
    from kalliope_tel.omnia import console as omnia

    def work(session: Session) -> dict[str, Any]:
        owner = _partner(session, partner)
        made = omnia.create_customer(
            session, _cli(), owner, legal_name=legal_name, code=code, vat=vat, fiscal=fiscal, manager_enabled=manager
        )
        return company_row(session, made)

    row = in_transaction(work)
    print_json(row) if as_json else console.print(f"customer {row['id']}: {row['legal_name']}", highlight=False)


@customers_app.command("update")
def customers_update(
    customer: int,
    legal_name: str | None = typer.Option(None, "--name", help="Legal name (Ragione Sociale)."),
    code: str | None = typer.Option(None, "--code"),
    vat: str | None = typer.Option(None, "--vat"),
    fiscal: str | None = typer.Option(None, "--fiscal-code"),
    manager: bool | None = typer.Option(None, "--manager/--no-manager"),
    as_json: bool = JSON,
) -> None:
    """Change a customer's company data (what is given)."""
    from kalliope_tel.omnia import console as omnia

    def work(session: Session) -> dict[str, Any]:
        row, owner = _customer(session, customer)
        changed = omnia.update_customer(
            session, _cli(), owner, row, legal_name=legal_name, code=code, vat=vat, fiscal=fiscal,
            manager_enabled=manager,
        )  # fmt: skip
        return company_row(session, changed)

    row = in_transaction(work)
    print_json(row) if as_json else console.print(f"customer {row['id']}: {row['legal_name']}", highlight=False)


def _customer(session: Session, customer_id: int) -> tuple[Company, Company]:
    """A customer and its partner."""
    from kalliope_tel.tenancy import companies
    from kalliope_tel.tenancy.exceptions import InvalidCompany
    from kalliope_tel.tenancy.models import CompanyKind

    row = companies.get_company(session, customer_id)
    if row.kind is not CompanyKind.CUSTOMER or row.parent_id is None:
        raise InvalidCompany("company.partner_status")
    return row, companies.get_company(session, row.parent_id)


def _set_status(customer: int, suspended: bool, as_json: bool) -> None:
    from kalliope_tel.omnia import console as omnia
    from kalliope_tel.tenancy.models import CompanyStatus

    status = CompanyStatus.SUSPENDED if suspended else CompanyStatus.ACTIVE

    def work(session: Session) -> dict[str, Any]:
        row, owner = _customer(session, customer)
        return company_row(session, omnia.set_customer_status(session, _cli(), owner, row, status))

    row = in_transaction(work)
    print_json(row) if as_json else console.print(f"customer {row['id']}: {row['status']}", highlight=False)


@customers_app.command("suspend")
def customers_suspend(customer: int, as_json: bool = JSON) -> None:
    """Suspend a customer."""
    _set_status(customer, True, as_json)


@customers_app.command("resume")
def customers_resume(customer: int, as_json: bool = JSON) -> None:
    """Resume a suspended customer."""
    _set_status(customer, False, as_json)


@customers_app.command("delete")
def customers_delete(
    customer: int,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    as_json: bool = JSON,
) -> None:
    """Delete a customer, its PBXs with everything of theirs, and their generated Asterisk files."""
    from kalliope_tel.cli.asterisk_cmd import where
    from kalliope_tel.cli.pbx_cmd import remove_generated
    from kalliope_tel.omnia import console as omnia
    from kalliope_tel.tenancy import companies
    from kalliope_tel.tenancy.models import Pbx

    def plan(session: Session) -> tuple[dict[str, Any], list[tuple[str, Any, Any]]]:
        from sqlalchemy import select

        row = companies.get_company(session, customer)
        pbxs = session.scalars(select(Pbx).where(Pbx.company_id == row.id)).all()
        return company_row(session, row), [(p.slug, *where(p)) for p in pbxs]

    row, targets = in_transaction(plan)
    if not yes and not typer.confirm(
        f"Delete customer {row['legal_name']} with its {len(targets)} PBX(s) and all their data?"
    ):
        raise typer.Exit(1)

    def delete(session: Session) -> list[str]:
        row, owner = _customer(session, customer)
        return omnia.delete_customer(session, _cli(), owner, row)

    in_transaction(delete)
    files = {slug: remove_generated(slug, target, endpoints)[0] for slug, target, endpoints in targets}
    if as_json:
        print_json(
            {"removed": row["id"], "pbxs": sorted(files), "files": sorted(f for fs in files.values() for f in fs)}
        )
    else:
        console.print(
            f"deleted customer {row['legal_name']} and PBX(s) {', '.join(sorted(files)) or 'none'}", highlight=False
        )
