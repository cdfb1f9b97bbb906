"""Omnia's Admin Console through its API, on both stores: the second
factor (enrolment, a replayed code refused, a recovery code once), the
company choice and the customer view, customers with checked company data,
invitations, who may do what, suspension of logins, deletion leaving no
row of the customer, and the log with actor and address, append-only."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest
from sqlalchemy import select, text

from kalliope_tel.accounts.models import Account, CompanyMember
from kalliope_tel.db.engine import transaction
from kalliope_tel.tenancy.models import Company
from kalliope_tel.users.models import LinkKind, PasswordReset
from tests.console_support import (
    ALFA_ADMIN,
    BETA_ADMIN,
    NO_CUSTOMERS,
    PARTNER_ADMIN,
    READ_ONLY,
    Factors,
    console_login,
    password_step,
    seed_console,
)
from tests.integration.test_hostile_http import _head, _raw
from tests.web_node import RunningWeb, seeded_web

pytestmark = [pytest.mark.integration]
API = "/api/v1/console"
IT = {"accept-language": "it"}


@pytest.fixture(scope="module")
def web(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    with seeded_web(db_backend, tmp_path_factory.mktemp("console"), seed=seed_console) as node:
        yield node


@pytest.fixture(scope="module")
def factors() -> Factors:
    return Factors()


def test_the_second_factor_is_enrolled_then_owed_and_a_code_works_once(web: RunningWeb, factors: Factors) -> None:
    client, me = password_step(web, PARTNER_ADMIN)
    assert me["stage"] == "enrol"
    headers = {"x-csrf-token": str(me["csrf_token"])}
    # Nothing else works before the second factor.
    assert client.get("/api/v1/me").status_code == 401
    assert client.get(API + "/customers").status_code == 401
    secret = client.post("/api/v1/session/enrolment", headers=headers).json()["secret"]
    wrong = client.post("/api/v1/session/enrolment/confirm", json={"code": "000000"}, headers=headers | IT)
    assert wrong.status_code == 400 and "non è corretto" in wrong.json()["detail"]
    totp = pyotp.TOTP(secret)
    used = totp.now()
    done = client.post("/api/v1/session/enrolment/confirm", json={"code": used}, headers=headers)
    assert done.status_code == 200 and len(done.json()["recovery_codes"]) == 10
    assert client.get("/api/v1/me").json()["company"] is not None  # one company: chosen already
    recovery = done.json()["recovery_codes"]

    # The next login owes a code; the one used at enrolment is refused (replayed).
    again, me = password_step(web, PARTNER_ADMIN)
    assert me["stage"] == "second_factor"
    h = {"x-csrf-token": str(me["csrf_token"])}
    assert again.post("/api/v1/session/second-factor", json={"code": used}, headers=h).status_code == 400
    later = totp.at(time.time() + 30)  # the next step (one step of drift is accepted)
    assert again.post("/api/v1/session/second-factor", json={"code": later}, headers=h).status_code == 200
    assert again.get("/api/v1/me").status_code == 200
    third, me = password_step(web, PARTNER_ADMIN)
    h = {"x-csrf-token": str(me["csrf_token"])}
    assert third.post("/api/v1/session/second-factor", json={"code": later}, headers=h).status_code == 400
    # A recovery code works once.
    assert third.post("/api/v1/session/second-factor", json={"code": recovery[0]}, headers=h).status_code == 200
    fourth, me = password_step(web, PARTNER_ADMIN)
    h = {"x-csrf-token": str(me["csrf_token"])}
    assert fourth.post("/api/v1/session/second-factor", json={"code": recovery[0]}, headers=h).status_code == 400
    assert fourth.post("/api/v1/session/second-factor", json={"code": recovery[1]}, headers=h).status_code == 200
    factors.secrets[PARTNER_ADMIN], factors.recovery[PARTNER_ADMIN] = secret, recovery[2:]


def test_customers_users_rights_suspension_deletion_and_the_log(web: RunningWeb, factors: Factors) -> None:
    pa, pa_csrf = console_login(web, PARTNER_ADMIN, factors)
    h = {"x-csrf-token": pa_csrf}
    bad = pa.post(API + "/customers", json={"legal_name": "Gamma Srl", "vat_number": "IT00743110158"}, headers=h | IT)
    assert bad.status_code == 400 and "partita IVA" in bad.json()["detail"] and "controllo" in bad.json()["detail"]
    made = pa.post(API + "/customers", json={"legal_name": "Gamma Srl", "vat_number": "00743110157",
                                            "customer_code": "GAMMA"}, headers=h)  # fmt: skip
    assert made.status_code == 201, made.text
    gamma = made.json()["id"]
    assert {c["legal_name"] for c in pa.get(API + "/customers").json()} == {"Alfa Srl", "Beta Spa", "Gamma Srl"}
    assert pa.get(API + "/customers.csv").text.splitlines()[0].startswith("legal_name,customer_code,vat_number")

    # The partner switches to Gamma's view and invites its administrator.
    assert pa.post("/api/v1/session/view", json={"company": gamma}, headers=h).json()["view"] == gamma
    invited = pa.post(API + "/users", json={"email": "boss@gamma.test", "first_name": "Gina", "last_name": "Boss",
                                           "console_role": "admin"}, headers=h)  # fmt: skip
    assert invited.status_code == 201 and invited.json()["status"] == "invited", invited.text
    assert [u["email"] for u in pa.get(API + "/users").json()] == ["boss@gamma.test"]
    with transaction(web.container.sessions) as session:
        link = session.scalars(select(PasswordReset).join(Account).where(Account.email == "boss@gamma.test")).one()
        assert link.kind is LinkKind.INVITE
        assert 71.9 * 3600 < (link.expires_at - link.created_at).total_seconds() <= 72 * 3600
    gamma_log = pa.get(API + "/log").json()
    assert [e["operation"] for e in gamma_log] == ["log.user_invited"]
    assert gamma_log[0]["actor"] == PARTNER_ADMIN and gamma_log[0]["ip"] == "127.0.0.1"
    assert pa.post("/api/v1/session/view", json={"company": None}, headers=h).status_code == 200
    assert pa.post(API + "/customers", json={"legal_name": "Wrong View"}, headers=h).status_code == 201

    # Who may do what.
    ro, ro_csrf = console_login(web, READ_ONLY, factors)
    assert ro.get(API + "/users").status_code == 200 and ro.get(API + "/customers").status_code == 200
    for method, path in [("POST", "/customers"), ("POST", "/users"), ("DELETE", f"/customers/{gamma}"),
                         ("POST", f"/customers/{gamma}/suspend")]:  # fmt: skip
        assert ro.request(method, API + path, json={}, headers={"x-csrf-token": ro_csrf}).status_code in (403, 422)
    nm, _ = console_login(web, NO_CUSTOMERS, factors)
    assert nm.get(API + "/customers").status_code == 403 and nm.get(API + "/users").status_code == 200
    alfa, alfa_csrf = console_login(web, ALFA_ADMIN, factors)
    assert alfa.get(API + "/customers").status_code == 403
    assert [u["email"] for u in alfa.get(API + "/users").json()] == [ALFA_ADMIN]
    partner_users = {u["email"]: u["id"] for u in pa.get(API + "/users").json()}
    for target in (partner_users[READ_ONLY],):
        hit = alfa.patch(f"{API}/users/{target}", json={"department": "x"}, headers={"x-csrf-token": alfa_csrf})
        assert hit.status_code == 404
    view = alfa.post("/api/v1/session/view", json={"company": gamma}, headers={"x-csrf-token": alfa_csrf})
    assert view.status_code == 403
    assert web.client().get(API + "/users").status_code == 401

    # Suspend Alfa: its administrator's session ends and logins are refused; resume.
    alfa_id = next(c["id"] for c in pa.get(API + "/customers").json() if c["legal_name"] == "Alfa Srl")
    assert pa.post(f"{API}/customers/{alfa_id}/suspend", headers=h).json()["status"] == "suspended"
    assert alfa.get(API + "/users").status_code == 401
    refused = web.client()
    refused.get("/login")
    answer = refused.post("/api/v1/session", json={"email": ALFA_ADMIN, "password": "correct horse battery"},
                          headers={"x-csrf-token": refused.cookies["kt_login_csrf"]} | IT)  # fmt: skip
    assert answer.status_code == 401 and "sospes" in answer.json()["detail"]
    assert pa.post(f"{API}/customers/{alfa_id}/resume", headers=h).json()["status"] == "active"
    alfa, _ = console_login(web, ALFA_ADMIN, factors)
    assert alfa.get(API + "/users").status_code == 200

    # Delete Beta: no row of it is left, its administrator's account included.
    beta_id = next(c["id"] for c in pa.get(API + "/customers").json() if c["legal_name"] == "Beta Spa")
    assert pa.delete(f"{API}/customers/{beta_id}", headers=h).status_code == 204
    with transaction(web.container.sessions) as session:
        assert session.get(Company, beta_id) is None
        assert session.scalars(select(Account).where(Account.email == BETA_ADMIN)).first() is None
        assert session.scalars(select(CompanyMember).where(CompanyMember.company_id == beta_id)).first() is None

    # The partner's log: every change, newest first, with actor, address and before/after.
    log = pa.get(API + "/log").json()
    operations = [e["operation"] for e in log]
    assert operations[:5] == ["log.customer_deleted", "log.customer_resumed", "log.customer_suspended",
                              "log.customer_created", "log.customer_created"]  # fmt: skip
    suspended = log[2]
    assert suspended["before"] == {"status": "active"} and suspended["after"] == {"status": "suspended"}
    assert all(e["actor"] == PARTNER_ADMIN and e["ip"] == "127.0.0.1" and e["via"] == "api" for e in log)

    # Append-only, in the database itself.
    with pytest.raises(Exception, match="append-only"), transaction(web.container.sessions) as session:
        session.execute(text("UPDATE oplog_entry SET actor = 'someone else'"))


def test_suspended_customer_pbx_users_cannot_log_in(web: RunningWeb, tmp_path: Path) -> None:
    """A customer's PBX users (not Console members) are refused while it is suspended."""
    from kalliope_tel.tenancy import companies
    from kalliope_tel.tenancy.models import CompanyStatus
    from kalliope_tel.tenancy.services import create_pbx
    from kalliope_tel.users import services as users
    from kalliope_tel.users.models import Role
    from tests.web_support import PASSWORD

    with transaction(web.container.sessions) as session:
        partner = companies.installation_partner(session)
        delta = companies.create_customer(session, partner, "Delta Srl")
        pbx = create_pbx(session, "delta", "Delta", company=delta)
        users.add_user(session, pbx, "desk", "desk@delta.test", "Desk Delta")
        users.set_password(session, pbx, "desk", PASSWORD)
        users.set_roles(session, pbx, "desk", {Role.RECEPTIONIST})
    desk, me = password_step(web, "desk@delta.test")
    assert me["stage"] == "in" and me["pbx"] == "delta"
    with transaction(web.container.sessions) as session:
        companies.set_status(session, session.get(Company, delta.id), CompanyStatus.SUSPENDED)  # type: ignore[arg-type]
    assert desk.get("/api/v1/me").status_code == 401


def _users_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["first_name", "last_name", "email", "department", "console_role", "manager_role"])
    writer.writerows(rows)
    return out.getvalue().encode()


def test_a_users_csv_imports_all_rows_or_none_and_its_export_imports_unchanged(
    web: RunningWeb, factors: Factors
) -> None:
    alfa, csrf = console_login(web, ALFA_ADMIN, factors)
    h = {"x-csrf-token": csrf}
    rows = [[f"Nome{i}", f"Cognome{i}", f"user{i}@alfa.test", "Vendite" if i % 2 else "", "read_only" if i % 3 else "",
             "admin" if i % 5 == 0 else ""] for i in range(500)]  # fmt: skip
    bad = [list(r) for r in rows]
    bad[9][2] = "not-an-address"
    bad[199][4] = "boss"
    bad[399][2] = "user0@alfa.test"

    def upload(data: bytes, dry_run: bool = False, **headers: str) -> httpx.Response:
        return alfa.post(API + f"/users.csv?dry_run={str(dry_run).lower()}", files={"file": ("users.csv", data)},
                         headers=h | headers)  # fmt: skip

    refused = upload(_users_csv(bad), **IT)
    assert refused.status_code == 400, refused.text
    errors = refused.json()["errors"]
    assert [(e["line"], e["column"]) for e in errors] == [(11, "email"), (201, "console_role"), (401, "email")]
    assert "riga 2" in errors[2]["detail"]  # the duplicate names the first line it is on
    assert len(alfa.get(API + "/users").json()) == 1  # nothing written

    dry = upload(_users_csv(rows), dry_run=True)
    assert dry.json() == {"dry_run": True, "created": 500, "updated": 0, "unchanged": 0}, dry.text
    assert len(alfa.get(API + "/users").json()) == 1
    done = upload(_users_csv(rows))
    assert done.json() == {"dry_run": False, "created": 500, "updated": 0, "unchanged": 0}, done.text
    listed = alfa.get(API + "/users").json()
    assert len(listed) == 501 and {u["status"] for u in listed if u["email"] != ALFA_ADMIN} == {"invited"}
    assert next(u for u in listed if u["email"] == "user5@alfa.test")["manager_role"] == "admin"

    exported = alfa.get(API + "/users.csv").content
    again = upload(exported)
    assert again.json() == {"dry_run": False, "created": 0, "updated": 0, "unchanged": 501}, again.text
    assert alfa.get(API + "/users.csv").content == exported
    # Hostile sizes: a body declared over the web's cap is refused before any of it is sent (the CLI's
    # own cap is 2 MiB). Headers alone, on a socket: an httpx upload would race the server's close.
    status, body, _ = _raw(web, _head(API + "/users.csv", 300 << 10))
    assert status == 413 and b"web.body_declared_too_large" in body
    assert len(alfa.get(API + "/users").json()) == 501
    # Header names, not positions: a column named wrongly is refused as a whole.
    wrong = upload(b"mail,first_name\nx@alfa.test,X\n")
    assert wrong.status_code == 400 and wrong.json()["code"] == "csv.no_email_column"


def _console_routes(web: RunningWeb) -> list[tuple[str, str]]:
    document = httpx.get(web.url + "/api/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if path.startswith(API + "/")
    )


def _fill(path: str, customer: int, account: int) -> str:
    return path.replace("{customer_id}", str(customer)).replace("{account_id}", str(account))


def test_the_openapi_walk_every_console_route_per_role_and_company(web: RunningWeb, factors: Factors) -> None:
    """Every Console route of the OpenAPI document: anonymous callers get 401; read-only members 403 on
    every change; a customer's administrator 403 on customers and 404 on the partner's and another
    customer's users; a member who may not manage customers 403 on every customer route."""
    table = _console_routes(web)
    assert len(table) >= 14
    from kalliope_tel.accounts import services as accounts
    from kalliope_tel.accounts.models import ConsoleRole
    from kalliope_tel.tenancy import companies

    with transaction(web.container.sessions) as session:  # a customer of the walk's own
        partner = companies.installation_partner(session)
        omega = companies.create_customer(session, partner, "Omega Walk Srl")
        boss = accounts.create_account(session, "boss@omega.test", "Omega", "Boss")
        accounts.join_company(session, boss, omega, console=ConsoleRole.ADMIN)
        beta_id, beta_admin_id = omega.id, boss.id
        partner_user = session.scalars(select(Account.id).where(Account.email == READ_ONLY)).one()

    def walk(client: httpx.Client, csrf: str, customer: int, account: int) -> dict[tuple[str, str], int]:
        out = {}
        for method, path in table:
            url = _fill(path, customer, account)
            body = None if method == "GET" else {}
            files = {"file": ("u.csv", b"email\n")} if path.endswith("/users.csv") and method == "POST" else None
            answer = client.request(method, url, json=None if files else body, files=files,
                                    headers={"x-csrf-token": csrf} if csrf else {})  # fmt: skip
            out[(method, path)] = answer.status_code
        return out

    anonymous = walk(web.client(), "", beta_id, beta_admin_id)
    assert set(anonymous.values()) == {401}, anonymous
    ro, ro_csrf = console_login(web, READ_ONLY, factors)
    changes = {k: v for k, v in walk(ro, ro_csrf, beta_id, beta_admin_id).items() if k[0] != "GET"}
    assert set(changes.values()) == {403}, changes
    nm, nm_csrf = console_login(web, NO_CUSTOMERS, factors)
    on_customers = {k: v for k, v in walk(nm, nm_csrf, beta_id, beta_admin_id).items() if "/customers" in k[1]}
    assert set(on_customers.values()) == {403}, on_customers
    alfa, alfa_csrf = console_login(web, ALFA_ADMIN, factors)
    for target in (partner_user, beta_admin_id):  # the partner's user, another customer's user
        walked = walk(alfa, alfa_csrf, beta_id, target)
        assert {v for k, v in walked.items() if "/customers" in k[1]} == {403}, walked
        assert {v for k, v in walked.items() if "{account_id}" in k[1]} == {404}, walked


def test_a_company_can_ask_a_second_factor_of_its_pbx_users(web: RunningWeb, factors: Factors) -> None:
    from kalliope_tel.tenancy import companies
    from kalliope_tel.tenancy.services import create_pbx
    from kalliope_tel.users import services as users
    from kalliope_tel.users.models import Role
    from tests.web_support import PASSWORD

    with transaction(web.container.sessions) as session:
        alfa = session.scalars(select(Company).where(Company.legal_name == "Alfa Srl")).one()
        pbx = create_pbx(session, "alfa2fa", "Alfa", company=alfa)
        users.add_user(session, pbx, "front", "front@alfa.test", "Front Desk")
        users.set_password(session, pbx, "front", PASSWORD)
        users.set_roles(session, pbx, "front", {Role.RECEPTIONIST})
        assert companies.get_company(session, alfa.id).pbx_users_second_factor is False
    assert password_step(web, "front@alfa.test")[1]["stage"] == "in"
    alfa_client, csrf = console_login(web, ALFA_ADMIN, factors)
    changed = alfa_client.patch(API + "/company", json={"pbx_users_second_factor": True},
                                headers={"x-csrf-token": csrf})  # fmt: skip
    assert changed.status_code == 200 and changed.json()["pbx_users_second_factor"] is True, changed.text
    assert password_step(web, "front@alfa.test")[1]["stage"] == "enrol"
    log = alfa_client.get(API + "/log").json()
    assert log[0]["operation"] == "log.company_updated" and log[0]["after"] == {"pbx_users_second_factor": True}
