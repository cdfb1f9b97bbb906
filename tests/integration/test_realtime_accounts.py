"""Realtime PJSIP accounts (pjsip_accounts = realtime), on both stores:
what serve answers Asterisk's res_config_curl questions with, what it
refuses, and the dialplan changes it sends in place of a reload. The lab
test (test_manager_lab, PostgreSQL) shows Asterisk using them."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import live_dialplan
from kalliope_tel.asterisk.realtime import BadQuery, answer, parse_criteria
from kalliope_tel.asterisk.realtime_conf import realtime_files
from kalliope_tel.dialplan.generator import render
from kalliope_tel.extensions import services as extensions
from kalliope_tel.extensions.models import ExtensionStatus
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import create_pbx

pytestmark = [pytest.mark.integration]


@pytest.fixture
def pbx(db: Session) -> Pbx:
    return create_pbx(db, "acme", "Acme")


def single(db: Session, family: str, body: str) -> dict[str, str]:
    return dict(parse_qsl(answer(db, family, "single", body), keep_blank_values=True))


def test_serve_answers_the_accounts_of_active_extensions_only(db: Session, pbx: Pbx) -> None:
    [(login, _)] = extensions.create_extension(db, pbx, "201", name="Anna & Co").credentials.items()
    extensions.create_extension(db, pbx, "202")
    endpoint = single(db, "ps_endpoints", f"id={login}")
    # The same options as the file path, values escaped for the wire and back.
    assert endpoint["callerid"] == '"Anna & Co" <201>' and endpoint["context"] == "kt-acme-phones"
    assert endpoint["auth"] == f"{login}-auth" and endpoint["aors"] == login
    auth = single(db, "ps_auths", f"id={login}-auth")
    assert auth["auth_type"] == "md5" and len(auth["md5_cred"]) == 32 and "password" not in auth
    assert single(db, "ps_aors", f"id={login}")["max_contacts"]
    # An auth's id ends in -auth: the endpoint's name is no auth.
    assert single(db, "ps_auths", f"id={login}") == {}
    # Every row for a LIKE (pjsip show endpoints), one line each.
    lines = answer(db, "ps_endpoints", "multi", "id%20LIKE=acme-%25").splitlines()
    assert sorted(dict(parse_qsl(line))["id"] for line in lines) == ["acme-201", "acme-202"]
    # Asterisk's MWI question at start: endpoints with mailboxes; none has one.
    assert answer(db, "ps_endpoints", "multi", "mailboxes%20!%3D=") == ""
    # Suspended: nothing; then the PBX suspended: nothing either.
    extensions.set_status(db, pbx, "201", ExtensionStatus.SUSPENDED)
    assert single(db, "ps_endpoints", f"id={login}") == {}
    pbx.suspended = True
    db.flush()
    assert single(db, "ps_endpoints", "id=acme-202") == {}
    assert answer(db, "ps_endpoints", "multi", "id%20LIKE=%25") == ""


def test_read_only_and_strict(db: Session, pbx: Pbx) -> None:
    assert answer(db, "ps_endpoints", "require", "id=char%3A40") == "0"
    for operation in ("store", "update", "destroy"):
        assert answer(db, "ps_auths", operation, "id=x-auth&password=p") == "-1"
    for family, operation, body in (
        ("ps_contacts", "single", "id=x"),  # contacts stay in Asterisk's astdb
        ("ps_endpoints", "static", ""),
        ("ps_endpoints", "single", "id%3B%20DROP=x"),
        ("ps_endpoints", "single", "id%20REGEXP=x"),
    ):
        with pytest.raises(BadQuery):
            answer(db, family, operation, body)
    assert [c.op for c in parse_criteria("id=a&id%20LIKE=b%25&x%20!%3D=")] == ["=", "LIKE", "!="]


def test_realtime_files_keep_the_password_out_of_urls() -> None:
    files = realtime_files("http://127.0.0.1:8095", "asterisk", "s3cret-value")
    assert "s3cret-value" not in files["extconfig.conf"] and "s3cret-value" in files["res_curl.conf"]
    assert "expire_on_reload=yes" in files["sorcery.conf"]
    assert "conntimeout = 1" in files["res_curl.conf"] and "httptimeout = 5" in files["res_curl.conf"]
    with pytest.raises(ValueError):
        realtime_files("http://127.0.0.1:8095", "a:b", "pw")


def test_a_change_is_planned_in_place_and_a_change_of_includes_reloads(db: Session, pbx: Pbx) -> None:
    def dialplan() -> str:
        return render(db, pbx, "PJSIP/{account}", None, "realtime").files["kalliope/extensions_acme.conf"]

    extensions.create_extension(db, pbx, "201")
    before = dialplan()
    extensions.set_status(db, pbx, "201", ExtensionStatus.SUSPENDED)
    actions = live_dialplan.plan(before, dialplan())
    assert actions is not None
    # Hint and Hangup go: removed whole, then priority 1 refuses with cause 21.
    assert [a.name for a in actions] == ["DialplanExtensionRemove", "DialplanExtensionAdd"]
    assert dict(actions[1].fields)["Application"] == "Hangup" and dict(actions[1].fields)["ApplicationData"] == "21"
    suspended = dialplan()
    extensions.set_status(db, pbx, "201", ExtensionStatus.ACTIVE)
    back = live_dialplan.plan(suspended, dialplan())
    assert back is not None
    added = [dict(a.fields) for a in back if a.name == "DialplanExtensionAdd"]
    steps = [(f["Priority"], f["Application"]) for f in added]
    assert steps == [("hint", "PJSIP/acme-201"), ("1", "Dial"), ("2", "Hangup")]
    assert all(f["Replace"] == "yes" for f in added)
    # Nothing changed: nothing sent. A context's includes changed: a reload.
    assert live_dialplan.plan(before, before) == []
    assert live_dialplan.plan(before, before.replace("include => kalliope-services", "")) is None
    # Another context's extension changes in place too (a feature's: a hotel room's flow).
    other = before + "\n[kt-acme-room-301]\nexten => s,1,Dial(PJSIP/a)\n same => n,Hangup()\n"
    moved = live_dialplan.plan(other, other.replace("PJSIP/a)", "PJSIP/b)"))
    assert moved is not None and {dict(a.fields)["Context"] for a in moved} == {"kt-acme-room-301"}


def test_the_listener_wants_asterisks_credentials_and_a_small_body(fresh_db_url: str) -> None:
    import asyncio

    import httpx

    from kalliope_tel.asterisk.realtime_web import MAX_BODY, basic_credentials, realtime_app
    from kalliope_tel.config import Settings
    from kalliope_tel.container import Container
    from kalliope_tel.db import migrate

    container = Container(Settings(database_url=fresh_db_url))
    migrate.upgrade(container.engine)
    app = realtime_app(container, "asterisk", "right-password")
    url = "/realtime/ps_endpoints/single"
    right = {"authorization": basic_credentials("asterisk", "right-password")}
    wrong = {"authorization": basic_credentials("asterisk", "wrong-password")}

    async def ask() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rt") as client:
            return [
                await client.post(url, content="id=x"),
                await client.post(url, content="id=x", headers=wrong),
                await client.post(url, content="id=x", headers=right),
                await client.post(url, content="id=" + "x" * (MAX_BODY + 1), headers=right),
                await client.post("/realtime/ps_contacts/single", content="id=x", headers=right),
            ]

    anonymous, wrong_one, right_one, too_big, unknown = asyncio.run(ask())
    assert anonymous.status_code == 401 and wrong_one.status_code == 401
    assert right_one.status_code == 200 and right_one.text == ""
    assert too_big.status_code == 413
    assert unknown.status_code == 200 and unknown.text == ""  # logged, answered empty
    container.close()


def test_a_new_pbx_is_created_and_a_deleted_one_removed_in_place(db: Session, pbx: Pbx) -> None:
    extensions.create_extension(db, pbx, "201")
    text = render(db, pbx, "PJSIP/{account}", None, "realtime").files["kalliope/extensions_acme.conf"]
    actions = live_dialplan.plan("", text)
    assert actions is not None
    commands = [dict(a.fields)["Command"] for a in actions if a.name == "Command"]
    # The internal context's includes, in the file's order (the order Asterisk searches them).
    assert commands[-3:] == [
        "dialplan add include kt-acme-extensions into kt-acme-internal",
        "dialplan add include kalliope-services into kt-acme-internal",
        "dialplan add include kt-acme-outbound into kt-acme-internal",
    ]
    hints = [dict(a.fields) for a in actions if dict(a.fields).get("Priority") == "hint"]
    assert [(h["Extension"], h["Application"]) for h in hints] == [("201", "PJSIP/acme-201")]
    removed = live_dialplan.plan(text, "")
    assert removed is not None and "dialplan remove context kt-acme-extensions" in [
        dict(a.fields)["Command"] for a in removed
    ]
    # A labelled priority cannot go through AMI: that file reloads.
    labelled = text + "\n[kt-acme-room]\nexten => s,1,NoOp()\n same => n(done),Hangup()\n"
    assert live_dialplan.plan("", labelled) is None
    assert live_dialplan.plan(labelled, labelled.replace("NoOp()", "NoOp(x)")) is None
    # No PJSIP file per PBX with realtime accounts (nothing to reload for a new PBX).
    assert "kalliope/pjsip_acme.conf" not in render(db, pbx, "PJSIP/{account}", None, "realtime").files


def test_the_operator_writes_asterisks_side_without_seeing_the_password(tmp_path: Path) -> None:
    from tests.conftest import kalliope

    secret = "realtime-secret-value"
    env = {"KALLIOPE_REALTIME_BIND": "127.0.0.1:8095", "KALLIOPE_REALTIME_PASSWORD": secret}
    done = kalliope("asterisk", "realtime-conf", "--output", str(tmp_path), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    assert sorted(json.loads(done.stdout)["changed"]) == ["extconfig.conf", "res_curl.conf", "sorcery.conf"]
    curl = tmp_path / "res_curl.conf"
    assert secret in curl.read_text() and curl.stat().st_mode & 0o777 == 0o640
    # No password, no file: the refusal says what is missing.
    no_password = {"KALLIOPE_REALTIME_BIND": "1.2.3.4:1"}
    refused = kalliope("asterisk", "realtime-conf", "-o", str(tmp_path / "x"), env=no_password)
    assert refused.returncode != 0 and "realtime_password" in refused.stdout + refused.stderr
    assert not (tmp_path / "x").exists()
