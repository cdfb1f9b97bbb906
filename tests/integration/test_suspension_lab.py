"""Suspending a customer reaches every path, on the lab Asterisk with a
running serve: a phone registered over real SIP (the lab Asterisk
registering to itself with the room account's credentials) is refused at
its next registration and its calls are refused, a wake-up alarm falling
due is not called (it ends not answered, "suspended", and is not called
later either), the PBX's user cannot log in; resumed, all three work
again. Deleted, no row of the customer and no generated file is left, and
the slug can be used again."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from kalliope_tel.asterisk.config_state import state_of
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.base import utcnow
from kalliope_tel.db.engine import transaction
from kalliope_tel.extensions import accounts as ext_accounts
from kalliope_tel.hotel import services as hotel
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.omnia import console
from kalliope_tel.omnia.generated import forget_generated
from kalliope_tel.oplog.services import Actor
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.models import Company, CompanyStatus
from kalliope_tel.tenancy.services import create_pbx, get_pbx
from kalliope_tel.users import services as users
from kalliope_tel.users.models import Role
from kalliope_tel.wakeup import services as wakeup
from kalliope_tel.wakeup.models import Alarm, AlarmAttempt, AlarmState, AttemptOutcome
from kalliope_tel.web import access
from tests.helpers import ServeNode, rows_of, serve_env
from tests.integration.test_manager_lab import register_within
from tests.integration.test_wakeup_serve import stop
from tests.web_support import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]
SLUG, PHONE_ROOM, CALLED_ROOM = "sospesa", "371", "372"
KEY = f"{SLUG}-{CALLED_ROOM}"  # the lab phone's key outside the default PBX
ACTOR = Actor("test@partner.test", "api", "127.0.0.1")


def _setup(url: str) -> tuple[Container, str, str]:
    container = Container(Settings(database_url=url))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as s:
        partner = companies.installation_partner(s)
        customer = companies.create_customer(s, partner, "Sospesa Srl")
        pbx = create_pbx(s, SLUG, "Sospesa", company=customer)
        hotel.ensure_default_classes(s, pbx, "kt-lab-trunk")
        hotel.create_template(s, pbx, "std")
        made = hotel.create_room(s, pbx, PHONE_ROOM, "", "std", new_accounts=1)
        hotel.create_room(s, pbx, CALLED_ROOM, "", "std", new_accounts=1)
        wakeup.update_settings(s, pbx, name="Wake-up", number="900", message="beep", attempts=1, ring_timeout=5,
                               confirm_answer=False)  # fmt: skip
        users.add_user(s, pbx, "desk", "desk@sospesa.test", "Desk")
        users.set_password(s, pbx, "desk", PASSWORD)
        users.set_roles(s, pbx, "desk", {Role.RECEPTIONIST})
        ((username, password),) = made.new_credentials.items()
        return container, ext_accounts.sip_login(pbx, username), password


def _phone_conf(lab_state: LabState, login: str, password: str) -> str:
    """An outbound registration and endpoint of the lab Asterisk to itself, as the room's phone."""
    server = f"sip:127.0.0.1:{lab_state.sip_port}"
    return f"""; TEST ONLY: the lab Asterisk as a phone of room {PHONE_ROOM}
[labphone-auth]
type = auth
auth_type = userpass
username = {login}
password = {password}

[labphone]
type = registration
transport = transport-udp
outbound_auth = labphone-auth
server_uri = {server}
client_uri = sip:{login}@127.0.0.1:{lab_state.sip_port}
contact_user = labphone
retry_interval = 60
forbidden_retry_interval = 60
expiration = 120
auth_rejection_permanent = no

[labphone-aor]
type = aor
contact = {server}

[labphone]
type = endpoint
context = kt-lab-nowhere
disallow = all
allow = ulaw
outbound_auth = labphone-auth
aors = labphone-aor
from_user = {login}
direct_media = no
"""


def _registration(lab: LabInstance) -> str:
    out = lab.cli("pjsip show registrations", check=False)
    found = re.search(r"labphone/\S+\s+\S+\s+(\w+)", out)
    return found.group(1) if found else out


def _wait(what: str, check: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def _applied(container: Container) -> bool:
    with transaction(container.sessions, read_only=True) as s:
        pbx = get_pbx(s, SLUG)
        state = state_of(s, pbx)
        return state["state"] == "applied" and state["applied_serial"] >= pbx.config_serial


def _call_lands(lab: LabInstance) -> bool:
    """A SIP call from the registered phone to room 372: True when room 372's phone rang."""
    before = calls_by_room_key(lab)
    lab.cli(f"channel originate PJSIP/{CALLED_ROOM}@labphone application Wait 2", check=False)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        if calls_by_room_key(lab) > before:
            return True
        time.sleep(0.25)
    return False


def calls_by_room_key(lab: LabInstance) -> int:
    out = lab.cli("database show ktlab/calls")
    found = re.search(rf"/ktlab/calls/{KEY}\s*:\s*(\d+)", out)
    return int(found.group(1)) if found else 0


def _can_log_in(container: Container) -> bool:
    try:
        access.login(container.sessions, "desk@sospesa.test", PASSWORD, ip="10.9.9.9")
    except access.LoginRefused as exc:
        assert exc.code == "login.suspended", exc.code
        return False
    return True


def _set_status(container: Container, status: CompanyStatus) -> None:
    with transaction(container.sessions) as s:
        customer = get_pbx(s, SLUG).company_id
        row = s.get(Company, customer)
        assert row is not None and row.parent_id is not None
        console.set_customer_status(s, ACTOR, companies.get_company(s, row.parent_id), row, status)


def _alarm_at(container: Container, seconds: float) -> int:
    with transaction(container.sessions) as s:
        return wakeup.set_alarm(s, get_pbx(s, SLUG), CALLED_ROOM, utcnow() + timedelta(seconds=seconds)).id


def _alarm_state(container: Container, alarm_id: int) -> AlarmState:
    with transaction(container.sessions, read_only=True) as s:
        state = s.scalar(select(Alarm.state).where(Alarm.id == alarm_id))
        assert state is not None
        return state


def test_suspend_reaches_sip_wakeup_and_logins_resume_restores_them_delete_leaves_nothing(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str
) -> None:
    container, login, password = _setup(fresh_db_url)
    phone = lab.dir / "etc" / "kalliope" / "pjsip_labphone.conf"
    lab.cli(f"database put ktlab/phone {KEY} phone-answer")
    # The lab's dialplan asks the FastAGI of its own port: this serve answers it (room calls, wake-up).
    env = serve_env(lab_state, fresh_db_url, KALLIOPE_AGI_BIND=lab_state.agi_bind, KALLIOPE_NODE_NAME="suspend-node",
                    KALLIOPE_SCHEDULER_INTERVAL_SECONDS="0.2")  # fmt: skip
    proc = ServeNode(env)
    out = ""
    try:
        _wait("the PBX's configuration applied", lambda: _applied(container), 30)
        phone.write_text(_phone_conf(lab_state, login, password))
        lab.cli("module reload res_pjsip.so", check=False)
        # Asked again every second: a request sent while res_pjsip was still reloading is dropped.
        register_within(lab, 20, "labphone")
        assert login in lab.cli(f"pjsip show aor {login}", check=False)
        assert _call_lands(lab), "a call from the registered phone"
        assert _can_log_in(container)

        # Suspended: the configuration has no endpoint, the next registration and calls are refused.
        _set_status(container, CompanyStatus.SUSPENDED)
        _wait("the suspended configuration applied", lambda: _applied(container), 30)
        assert "Unable to find" in lab.cli(f"pjsip show endpoint {login}", check=False)
        lab.cli("pjsip send register labphone", check=False)
        _wait("the registration refused", lambda: _registration(lab) in ("Rejected", "Unregistered"))
        assert not _call_lands(lab), "a call of a suspended PBX's phone"
        alarm = _alarm_at(container, 1)
        calls = calls_by_room_key(lab)
        time.sleep(5)  # well past due, with the scheduler ticking every 0.2 s
        # Not called, now or at the resume: not answered, an alert for the reception, with the reason.
        assert _alarm_state(container, alarm) is AlarmState.NOT_ANSWERED
        with transaction(container.sessions, read_only=True) as s:
            outcomes = s.scalars(select(AlarmAttempt.outcome).where(AlarmAttempt.alarm_id == alarm)).all()
        assert outcomes == [AttemptOutcome.SUSPENDED]
        assert calls_by_room_key(lab) == calls, "a suspended PBX's alarm was called"
        assert not _can_log_in(container)

        # Resumed: the phone registers again, calls land, a new alarm is called, the user logs in.
        _set_status(container, CompanyStatus.ACTIVE)
        _wait("the resumed configuration applied", lambda: _applied(container), 30)
        register_within(lab, 20, "labphone")
        again = _alarm_at(container, 1)
        _wait("the alarm called", lambda: _alarm_state(container, again) is not AlarmState.SCHEDULED, 30)
        assert calls_by_room_key(lab) > calls
        assert _call_lands(lab)
        assert _can_log_in(container)
    except AssertionError:
        out = stop(proc)
        raise
    finally:
        phone.unlink(missing_ok=True)
        lab.cli("module reload res_pjsip.so", check=False)
        lab.cli(f"database del ktlab/phone {KEY}")
        out = out or stop(proc)

    # Deleted: no row of it in any table, no generated file, the slug free again.
    config = lab.dir / "etc" / "kalliope"
    assert {p.name for p in config.iterdir() if SLUG in p.name} == {f"extensions_{SLUG}.conf", f"pjsip_{SLUG}.conf"}
    with transaction(container.sessions) as s:
        pbx = get_pbx(s, SLUG)
        pbx_id, customer_id = pbx.id, pbx.company_id
        customer = s.get(Company, customer_id)
        assert customer is not None and customer.parent_id is not None
        settings = Settings(database_url=fresh_db_url, asterisk_config_dir=lab.dir / "etc")
        remove = forget_generated(settings, s, customer_id)
        console.delete_customer(s, ACTOR, companies.get_company(s, customer.parent_id), customer)
    assert sorted(remove()) == [f"kalliope/extensions_{SLUG}.conf", f"kalliope/pjsip_{SLUG}.conf"]
    assert [p.name for p in config.iterdir() if SLUG in p.name] == []
    with transaction(container.sessions) as s:
        assert rows_of(s, pbx_id) == {}
        assert s.get(Company, customer_id) is None
        assert s.scalar(text("SELECT count(*) FROM account WHERE email = 'desk@sospesa.test'")) == 0
        partner = companies.installation_partner(s)
        again = create_pbx(s, SLUG, "Again", company=companies.create_customer(s, partner, "Nuova Srl"))
        assert (again.slug == SLUG and again.id != pbx_id) or again.slug == SLUG
    container.close()
