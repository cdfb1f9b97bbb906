"""SIP trunks and numbers over real SIP: a second lab Asterisk plays the
carrier. It asks for registration and digest authentication, owns a block
of DIDs it sends to the registered trunk, and takes calls from a trunk that
authenticated only. serve applies every change on its own.

Shown here: a trunk with the right credentials is Registered within 10 s
and one with a wrong password Rejected (the list and doctor say so); an
extension calls out through the trunk and the carrier sees the call come
from the authenticated account, with the extension's number of the block;
the carrier calls a number of a 2-digit block and the extension named by
the last two digits rings; a number of the block without such an extension
reaches the PBX's default destination; while the PBX is suspended its
numbers are refused with its cause. Then groups: two customers' PBXs in a
numbering group call each other's extensions, a third PBX outside it is
refused; in a shared group a ring group rings extensions of both members
and a member's hint is seen in the group's context, not outside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.asterisk.config_state import state_of
from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.dialplan.trunks import outbound_context
from kalliope_tel.groups import services as groups
from kalliope_tel.hotel import services as hotel
from kalliope_tel.lab.dial import DialReport, lab_dial
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.omnia import manager
from kalliope_tel.oplog.services import Actor
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.models import Company, Pbx
from kalliope_tel.trunks import numbers
from kalliope_tel.trunks import services as trunks
from kalliope_tel.trunks.models import SipTrunk
from kalliope_tel.trunks.registration import trunk_states
from tests.conftest import LAB_ROOT, kalliope
from tests.helpers import ServeNode, serve_env
from tests.integration.test_wakeup_serve import stop

pytestmark = [pytest.mark.integration, pytest.mark.asterisk, pytest.mark.timeout(300)]
ACTOR = Actor("partner@provider.test", "api", "127.0.0.1")
GOOD_USER, GOOD_PASSWORD = "alfa1", "Good-pass-1"
BAD_USER, BAD_PASSWORD = "alfa2", "Other-pass-2"
BLOCK = "0612345600"  # 06123456XX: the last two digits name the extension


def _carrier_conf() -> tuple[str, str]:
    """The carrier's accounts (registration and calls need digest auth) and dialplan."""
    accounts = ""
    for user, password in ((GOOD_USER, GOOD_PASSWORD), (BAD_USER, BAD_PASSWORD)):
        accounts += f"""
[{user}-auth]
type = auth
auth_type = userpass
username = {user}
password = {password}

[{user}]
type = aor
max_contacts = 1
remove_existing = yes

[{user}]
type = endpoint
context = carrier-in
disallow = all
allow = ulaw,alaw
auth = {user}-auth
aors = {user}
direct_media = no
trust_id_inbound = yes
"""
    dialplan = f"""
; Calls from a trunk: reached only after digest authentication as one of
; the accounts above, and taken only while that account is registered; the
; carrier records who, to what, from what number.
[carrier-in]
exten => _X.,1,GotoIf($["${{PJSIP_DIAL_CONTACTS(${{CHANNEL(endpoint)}})}}" = ""]?refused)
 same => n,Set(DB(carrier/last)=${{CHANNEL(endpoint)}}/${{EXTEN}}/${{CALLERID(num)}})
 same => n,Answer()
 same => n,Wait(1)
 same => n,Hangup()
 same => n(refused),Hangup(21)

; The carrier sends a call for one of its DIDs to the registered trunk.
[carrier-dids]
exten => _X.,1,Dial(PJSIP/${{EXTEN}}@{GOOD_USER},15)
 same => n,Set(DB(carrier/status)=${{DIALSTATUS}}/${{HANGUPCAUSE}})
 same => n,Hangup()
"""
    return accounts, dialplan


@pytest.fixture
def carrier(lab_state: LabState) -> Iterator[LabInstance]:
    other = LabInstance(LAB_ROOT, f"pytest-carrier-{os.getpid()}-{uuid.uuid4().hex[:4]}")
    state = other.start(agi_port=lab_state.agi_port)
    accounts, dialplan = _carrier_conf()
    (other.dir / "etc" / "kalliope").mkdir(exist_ok=True)
    (other.dir / "etc" / "kalliope" / "pjsip_carrier.conf").write_text(accounts)
    (other.dir / "etc" / "kalliope" / "extensions_carrier.conf").write_text(dialplan)
    other.cli("module reload res_pjsip.so", check=False)
    other.cli("dialplan reload", check=False)
    assert state.sip_port
    yield other
    other.purge()


def _setup(url: str, lab_state: LabState, carrier_port: int) -> Container:
    # The lab's AMI: the trunk list and doctor ask it for the registrations.
    container = Container(Settings(database_url=url, lab_root=LAB_ROOT, lab_name=lab_state.name))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as s:
        partner = companies.installation_partner(s)
        uno = companies.create_customer(s, partner, "Uno Srl")
        due = companies.create_customer(s, partner, "Due Srl")
        tre = companies.create_customer(s, partner, "Tre Srl")
        alfa = manager.create_pbx(s, ACTOR, uno, "alfa", name="Alfa")
        beta = manager.create_pbx(s, ACTOR, due, "beta", name="Beta")
        gamma = manager.create_pbx(s, ACTOR, tre, "gamma", name="Gamma")
        for pbx, company, number in ((alfa, uno, "42"), (alfa, uno, "43"), (beta, due, "301"), (gamma, tre, "501")):
            manager.create_extension(s, ACTOR, company, pbx, number, name=f"{pbx.slug} {number}")
        trunks.save_carrier(s, ACTOR, "LabTel", [f"127.0.0.1:{carrier_port}"], "udp", "ulaw,alaw", True)
        good = trunks.create_trunk(s, ACTOR, uno, description="Alfa main", carrier="LabTel", username=GOOD_USER,
                                   password=GOOD_PASSWORD)  # fmt: skip
        trunks.create_trunk(s, ACTOR, partner, description="Wrong password", carrier="LabTel", username=BAD_USER,
                            password=BAD_PASSWORD + "x")  # fmt: skip
        numbers.create_number(s, ACTOR, uno, alfa, BLOCK, 2, good.id)
        alfa.default_destination = "43"
        alfa.suspended_cause = 21
        hotel.ensure_default_classes(s, alfa, outbound_context(alfa, good.id))
        hotel.ensure_default_classes(s, beta, "kt-lab-trunk")
    return container


@contextlib.contextmanager
def _serving(lab: LabInstance, lab_state: LabState, url: str, container: Container, node: str) -> Iterator[None]:
    """A serve node applying the changes; its output printed when an assertion fails."""
    proc = ServeNode(serve_env(lab_state, url, KALLIOPE_AGI_BIND=lab_state.agi_bind, KALLIOPE_NODE_NAME=node))
    try:
        _wait("every PBX live", lambda: _applied(container), 30)
        yield
    except AssertionError:
        print(stop(proc)[-4000:])
        raise
    finally:
        lab.cli("database deltree ktlab/phone", check=False)
        if proc.poll() is None:
            stop(proc)
        container.close()


def _in(container: Container, work: Any) -> Any:
    with transaction(container.sessions) as s:
        return work(
            s, {c.legal_name: c for c in s.scalars(select(Company))}, {p.slug: p for p in s.scalars(select(Pbx))}
        )


def _applied(container: Container) -> bool:
    with transaction(container.sessions, read_only=True) as s:
        return all(state_of(s, p)["state"] == "applied" for p in s.scalars(select(Pbx)) if not p.is_default)


def _wait(what: str, check: Any, seconds: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, what
        time.sleep(0.2)
    return time.monotonic() - started


def _states(container: Container) -> dict[str, str]:
    with transaction(container.sessions, read_only=True) as s:
        found = list(s.scalars(select(SipTrunk).order_by(SipTrunk.id)))
        states = trunk_states(container, found)
        return {t.description: states[t.id] for t in found}


def _calls(lab: LabInstance, key: str) -> int:
    found = re.search(r"Value: (\d+)", lab.cli(f"database get ktlab/calls {key}", check=False))
    return int(found.group(1)) if found else 0


def _carrier_db(carrier: LabInstance, key: str) -> str:
    found = re.search(r"Value: (\S+)", carrier.cli(f"database get carrier {key}", check=False))
    return found.group(1) if found else ""


def _dial(state: LabState, pbx: str, caller: str, number: str, seconds: float = 8) -> DialReport:
    client = AriClient(state.ari_url, state.ari_username, state.ari_password, apps=[f"kt-trk-{uuid.uuid4().hex[:6]}"])
    return asyncio.run(lab_dial(client, caller, number, max_duration=seconds, variables={"KT_LAB_PBX": pbx}))


def _carrier_calls(carrier: LabInstance, lab: LabInstance, did: str, key: str) -> tuple[bool, str]:
    """The carrier calls ``did``: whether the phone ``key`` rang, and how the carrier's Dial ended."""
    before = _calls(lab, key)
    carrier.cli("database del carrier status", check=False)
    carrier.cli(f"channel originate Local/{did}@carrier-dids application Wait 3", check=False)
    deadline = time.monotonic() + 10
    # Until the phone rings, or the carrier's Dial ends without it (refused).
    while time.monotonic() < deadline and _calls(lab, key) == before and not _carrier_db(carrier, "status"):
        time.sleep(0.2)
    return _calls(lab, key) > before, _carrier_db(carrier, "status")


@pytest.mark.both_stores
def test_trunks_and_numbers_on_a_real_carrier(
    lab: LabInstance, lab_state: LabState, carrier: LabInstance, fresh_db_url: str
) -> None:
    carrier_state = carrier.read_state()
    assert carrier_state is not None
    container = _setup(fresh_db_url, lab_state, carrier_state.sip_port)
    env = serve_env(lab_state, fresh_db_url)  # for the CLI
    with _serving(lab, lab_state, fresh_db_url, container, "trunk-node"):
        # Registration: the right credentials Registered within 10 s, the wrong password Rejected.
        took = _wait("Registered", lambda: _states(container)["Alfa main"] == "registered", 10)
        _wait("Rejected", lambda: _states(container)["Wrong password"] == "rejected", 15)
        listed = {
            r["description"]: r for r in json.loads(kalliope("omnia", "trunks", "list", "--json", env=env).stdout)
        }
        assert listed["Wrong password"]["registration"] == "rejected"  # the partner's own trunk
        assert BAD_PASSWORD not in json.dumps(listed) and listed["Wrong password"]["password_set"]
        uno_id = _in(container, lambda s, c, p: c["Uno Srl"].id)
        uno = {r["description"]: r for r in json.loads(
            kalliope("omnia", "trunks", "list", "--json", "--company", str(uno_id), env=env).stdout)}  # fmt: skip
        assert uno["Alfa main"]["registration"] == "registered", uno
        doctor = {c["name"]: c for c in json.loads(kalliope("doctor", "--json", env=env).stdout)}
        trunk_checks = {c["detail"].split(" (")[0]: c for c in doctor.values() if c["name"].startswith("trunk ")}
        assert trunk_checks["Alfa main"]["ok"] and not trunk_checks["Wrong password"]["ok"], trunk_checks
        assert "Rejected" in trunk_checks["Wrong password"]["detail"]
        assert took < 10

        # Out: extension 42 calls an outside number; the carrier sees its authenticated account.
        _dial(lab_state, "alfa", "42", "0255501234")
        assert _carrier_db(carrier, "last") == f"{GOOD_USER}/0255501234/0612345642"

        # In: the block's 42 rings extension 42; 99 (no such extension) the default destination 43.
        assert _carrier_calls(carrier, lab, "0612345642", "alfa-42")[0], "the carrier's call to 0612345642"
        assert _carrier_calls(carrier, lab, "0612345699", "alfa-43")[0], "the default destination"

        # Suspended PBX: its numbers are refused with its cause, nothing rings.
        _in(container, lambda s, c, p: manager.set_pbx_suspended(s, ACTOR, c["Uno Srl"], p["alfa"], True))
        _wait("the suspension live", lambda: _applied(container), 10)
        rang, status = _carrier_calls(carrier, lab, "0612345642", "alfa-42")
        assert not rang and status.endswith("/21"), status
        _in(container, lambda s, c, p: manager.set_pbx_suspended(s, ACTOR, c["Uno Srl"], p["alfa"], False))


def test_numbering_and_shared_groups_across_customers(lab: LabInstance, lab_state: LabState, fresh_db_url: str) -> None:
    container = _setup(fresh_db_url, lab_state, 5060)  # no carrier: the trunk never registers, unused here
    with _serving(lab, lab_state, fresh_db_url, container, "group-node"):
        # Numbering group: alfa and beta (two customers) dial each other; gamma is refused.
        def numbering(s: Any, c: dict[str, Company], p: dict[str, Pbx]) -> None:
            group = groups.create_group(s, ACTOR, c["Uno Srl"], "Campus", "numbering")
            groups.join_group(s, ACTOR, c["Uno Srl"], p["alfa"], group)
            groups.join_group(s, ACTOR, c["Due Srl"], p["beta"], group)

        _in(container, numbering)
        _wait("the group live", lambda: _applied(container), 10)
        before = _calls(lab, "beta-301")
        _dial(lab_state, "alfa", "42", "301", seconds=2.5)
        assert _calls(lab, "beta-301") == before + 1, "alfa's 42 to beta's 301"
        _dial(lab_state, "beta", "301", "42", seconds=2.5)
        assert _calls(lab, "alfa-42") >= 1
        refused = _dial(lab_state, "gamma", "501", "301", seconds=2.5)
        assert _calls(lab, "beta-301") == before + 1, "gamma is outside the group"
        # Refused as a number no class lets out, not routed anywhere.
        assert refused.variables.get("KALLIOPE_OUTBOUND_CLASS") == "" and "ss-noservice" in refused.prompts, refused

        # Shared group: a ring group rings both members; a member's hint is seen inside, not outside.
        def shared(s: Any, c: dict[str, Company], p: dict[str, Pbx]) -> None:
            groups.delete_group(s, ACTOR, c["Uno Srl"], groups.group_of(s, c["Uno Srl"], "Campus"))
            group = groups.create_group(s, ACTOR, c["Uno Srl"], "Reception", "shared")
            groups.join_group(s, ACTOR, c["Uno Srl"], p["alfa"], group)
            groups.join_group(s, ACTOR, c["Due Srl"], p["beta"], group)
            groups.save_ring_group(s, ACTOR, group, "800", "Front desk", [("alfa", "42"), ("beta", "301")])

        _in(container, shared)
        _wait("the shared group live", lambda: _applied(container), 10)
        a42, b301 = _calls(lab, "alfa-42"), _calls(lab, "beta-301")
        for key in ("alfa-42", "beta-301"):  # both ring on (one answering would cancel the other's leg)
            lab.cli(f"database put ktlab/phone {key} phone-noanswer")
        _dial(lab_state, "alfa", "43", "800", seconds=2.5)
        assert (_calls(lab, "alfa-42"), _calls(lab, "beta-301")) == (a42 + 1, b301 + 1), "the ring group"
        assert "alfa_42" in lab.cli("dialplan show alfa_42@kt-beta-internal", check=False)
        assert "hint" in lab.cli("dialplan show alfa_42@kt-beta-internal", check=False)
        assert "There is no existence" in lab.cli("dialplan show alfa_42@kt-gamma-internal", check=False)
        assert "ktx-group" not in lab.cli("dialplan show 301@kt-gamma-internal", check=False)
