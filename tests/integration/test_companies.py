"""Companies, on both stores: the PBXs that existed belong to the
installation's partner; a customer's company data is checked as the tax
office defines it (refusals say why, in Italian too); its code is unique
among the partner's customers; and deleting a customer leaves no row of
its PBXs in any table, its slug free again."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.it import codicefiscale

from kalliope_tel.hotel import services as hotel
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.exceptions import InvalidCompany
from kalliope_tel.tenancy.models import Company, CompanyKind, CompanyStatus, Pbx
from kalliope_tel.tenancy.services import create_pbx, get_pbx
from kalliope_tel.users.services import add_user
from tests.conftest import kalliope
from tests.helpers import rows_of

pytestmark = pytest.mark.integration
VALID_VAT = "IT00743110157"
VALID_FISCAL = "RSSMRA85T10A562S"
# Born on the 30th of February, with the right check letter: only the date is wrong.
BAD_BIRTH_DATE = "RSSMRA85B30A562" + codicefiscale.calc_check_digit("RSSMRA85B30A562")


def test_the_existing_pbxs_belong_to_the_installation_partner(db: Session) -> None:
    partner = companies.installation_partner(db)
    assert partner.kind is CompanyKind.PARTNER and partner.parent_id is None
    assert get_pbx(db).company_id == partner.id
    assert create_pbx(db, "second", "Second").company_id == partner.id  # no company named: the partner's


@pytest.mark.parametrize(
    ("vat", "fiscal", "field", "italian"),
    [
        ("IT00743110158", "", "vat_number", "il carattere di controllo è sbagliato"),
        ("0074311015", "", "vat_number", "ha un numero di caratteri sbagliato"),
        ("", "RSSMRA85T10A562X", "fiscal_code", "il carattere di controllo è sbagliato"),
        ("", BAD_BIRTH_DATE, "fiscal_code", "una sua parte non è valida"),
        ("", "00743110158", "fiscal_code", "il carattere di controllo è sbagliato"),  # a company's: a VAT number
    ],
)
def test_company_data_is_checked_with_the_reason(db: Session, vat: str, fiscal: str, field: str, italian: str) -> None:
    partner = companies.installation_partner(db)
    with pytest.raises(InvalidCompany) as refused:
        companies.create_customer(db, partner, "Hotel Bella Vista srl", vat=vat, fiscal=fiscal)
    assert refused.value.params["field"] == field
    assert italian in refused.value.text("it")


def test_customers_are_stored_compact_with_codes_unique_per_partner(db: Session) -> None:
    partner = companies.installation_partner(db)
    first = companies.create_customer(db, partner, "  Hotel  Bella Vista srl ", code="C-001", vat=VALID_VAT,
                                      fiscal=VALID_FISCAL.lower())  # fmt: skip
    assert (first.legal_name, first.vat_number, first.fiscal_code) == (
        "Hotel Bella Vista srl",
        "00743110157",
        VALID_FISCAL,
    )
    with pytest.raises(InvalidCompany) as taken:
        companies.create_customer(db, partner, "Another", code="C-001")
    assert taken.value.code == "company.code_taken"
    other = companies.create_partner(db, "Second provider")
    assert companies.create_customer(db, other, "Theirs", code="C-001").customer_code == "C-001"  # another partner's
    with pytest.raises(InvalidCompany):
        companies.create_customer(db, first, "A customer's customer")  # two levels, fixed
    assert [c.legal_name for c in companies.customers_of(db, partner)] == ["Hotel Bella Vista srl"]
    companies.set_status(db, first, CompanyStatus.SUSPENDED)
    assert first.status is CompanyStatus.SUSPENDED
    with pytest.raises(InvalidCompany):
        companies.set_status(db, partner, CompanyStatus.SUSPENDED)


def test_deleting_a_customer_leaves_no_row_of_its_pbxs_and_frees_the_slug(db: Session) -> None:
    partner = companies.installation_partner(db)
    customer = companies.create_customer(db, partner, "Albergo Sole")
    pbx = create_pbx(db, "sole", "Albergo Sole", company=customer)
    hotel.ensure_default_classes(db, pbx)
    hotel.create_template(db, pbx, "std")
    hotel.create_room(db, pbx, "101", "Room 101", "std", new_accounts=1)
    add_user(db, pbx, "desk", "desk@sole.test")
    pbx_id = pbx.id
    before = rows_of(db, pbx_id)
    assert {"hotel_room", "hotel_outbound_class", "app_user"} <= set(before), before
    assert companies.remove_customer(db, customer) == ["sole"]
    db.expire_all()
    assert rows_of(db, pbx_id) == {}
    assert db.scalars(select(Pbx).where(Pbx.slug == "sole")).first() is None
    assert db.get(Company, customer.id) is None
    assert create_pbx(db, "sole", "Again", company=companies.create_customer(db, partner, "Sole again")).slug == "sole"


@pytest.mark.commands
def test_the_omnia_commands_add_list_suspend_and_delete_customers(fresh_db_url: str, tmp_path: Path) -> None:
    env = {"KALLIOPE_DATABASE_URL": fresh_db_url, "KALLIOPE_DATA_DIR": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return kalliope(*args, env=env)

    assert cli("db", "upgrade").returncode == 0
    bad = cli("omnia", "customers", "add", "Hotel Bella Vista srl", "--vat", "IT00743110158")
    assert bad.returncode == 1 and "VAT number 'IT00743110158': its check digit is wrong" in bad.stderr, bad.stderr
    made = cli("omnia", "customers", "add", "Hotel Bella Vista srl", "--vat", VALID_VAT, "--code", "C1", "--json")
    assert made.returncode == 0, made.stderr
    customer = json.loads(made.stdout)
    assert (customer["vat_number"], customer["status"], customer["kind"]) == ("00743110157", "active", "customer")
    pbx = cli("pbx", "add", "bella", "--company", str(customer["id"]), "--json")
    assert pbx.returncode == 0 and json.loads(pbx.stdout)["company"] == customer["id"], pbx.stderr
    listed = json.loads(cli("omnia", "customers", "list", "--json").stdout)
    assert [(c["legal_name"], c["pbxs"]) for c in listed] == [("Hotel Bella Vista srl", 1)]
    suspended = json.loads(cli("omnia", "customers", "suspend", str(customer["id"]), "--json").stdout)
    assert suspended["status"] == "suspended"
    gone = cli("omnia", "customers", "delete", str(customer["id"]), "--yes", "--json")
    assert gone.returncode == 0 and json.loads(gone.stdout)["pbxs"] == ["bella"], gone.stderr
    assert [p["slug"] for p in json.loads(cli("pbx", "list", "--json").stdout)] == ["default"]
    assert json.loads(cli("omnia", "companies", "list", "--json").stdout)[0]["legal_name"] == "Installation"

    # Users of the partner, invited from the command line; the log names the operating-system user.
    invited = cli("omnia", "accounts", "invite", "ops@partner.test", "--first-name", "Olga", "--console", "admin",
                  "--manage-customers", "--json")  # fmt: skip
    assert invited.returncode == 0 and json.loads(invited.stdout)["status"] == "invited", invited.stderr
    again = cli("omnia", "accounts", "invite", "ops@partner.test", "--json")
    assert again.returncode == 1 and "belongs to another user" in again.stderr
    listed_users = json.loads(cli("omnia", "accounts", "list", "--json").stdout)
    assert [(u["email"], u["console_role"], u["manage_customers"]) for u in listed_users] == [
        ("ops@partner.test", "admin", True)
    ]
    assert cli("omnia", "accounts", "suspend", "ops@partner.test").returncode == 0
    log = json.loads(cli("omnia", "log", "--json").stdout)
    assert [e["operation"] for e in log] == ["log.user_status", "log.user_invited", "log.customer_deleted",
                                             "log.customer_suspended", "log.customer_created"]  # fmt: skip
    who = f"{os.environ.get('SUDO_USER') or getpass.getuser()} (os)"
    assert {(e["actor"], e["via"]) for e in log} == {(who, "cli")}
    assert log[2]["before"]["legal_name"] == "Hotel Bella Vista srl"
    exported = tmp_path / "users.csv"
    exported.write_text(cli("omnia", "accounts", "export").stdout)
    dry = cli("omnia", "accounts", "import", str(exported), "--dry-run", "--json")
    assert json.loads(dry.stdout) == {"dry_run": True, "created": 0, "updated": 0, "unchanged": 1}, dry.stderr
    exported.write_text("email,console_role\nnew@partner.test,boss\n")
    bad = cli("omnia", "accounts", "import", str(exported))
    assert bad.returncode == 1 and "line 2, column console_role" in bad.stderr, bad.stderr
    exported.write_bytes(b"email\n" + b"x" * (2 << 20))  # over the command's cap: refused before it is read
    large = cli("omnia", "accounts", "import", str(exported))
    assert large.returncode == 1 and "larger than 2048 KiB" in large.stderr, large.stderr


def test_a_suspended_customers_due_alarms_end_not_answered_and_are_never_called(db: Session) -> None:
    from datetime import timedelta

    from kalliope_tel.db.base import utcnow
    from kalliope_tel.tenancy.models import CompanyStatus
    from kalliope_tel.wakeup import services as wakeup
    from kalliope_tel.wakeup.models import AlarmAttempt, AlarmState, AttemptOutcome

    partner = companies.installation_partner(db)
    customer = companies.create_customer(db, partner, "Albergo Luna")
    pbx = create_pbx(db, "luna", "Albergo Luna", company=customer)
    hotel.ensure_default_classes(db, pbx)
    hotel.create_template(db, pbx, "std")
    hotel.create_room(db, pbx, "101", "Room 101", "std", new_accounts=1)
    alarm = wakeup.set_alarm(db, pbx, "101", utcnow() + timedelta(minutes=5))
    later = utcnow() + timedelta(minutes=10)
    assert [p.slug for p in wakeup.due_pbxs(db, now=later)] == ["luna"]
    companies.set_status(db, customer, CompanyStatus.SUSPENDED)
    assert wakeup.due_pbxs(db, now=later) == [] and wakeup.due_suspended(db, now=later)
    assert wakeup.skip_suspended(db, "node-a", now=later) == 1
    db.refresh(alarm)
    assert alarm.state is AlarmState.NOT_ANSWERED and alarm.next_attempt_at is None
    attempts = db.scalars(select(AlarmAttempt).where(AlarmAttempt.alarm_id == alarm.id)).all()
    assert [(a.outcome, a.cause) for a in attempts] == [(AttemptOutcome.SUSPENDED, "customer suspended")]
    companies.set_status(db, customer, CompanyStatus.ACTIVE)
    assert wakeup.due_pbxs(db, now=later) == []  # not called at the resume either
