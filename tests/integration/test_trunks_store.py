"""Carriers, trunks, numbers and groups in the store, on both databases:
overlaps refused with the number they collide with, a deleted number free
at once, the all-or-nothing CSV import naming each refused line, a trunk
with numbers not deleted (its numbers listed), the trunk password never in
the log, another company's trunk out of reach, a numbering group's one
plan, and what the generator writes for them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from kalliope_tel.dialplan.generator import render
from kalliope_tel.errors import KalliopeError
from kalliope_tel.features import enabled_features
from kalliope_tel.groups import services as groups
from kalliope_tel.omnia import manager
from kalliope_tel.oplog.models import LogEntry
from kalliope_tel.oplog.services import Actor
from kalliope_tel.tables import ImportRefused
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.models import Company, Pbx
from kalliope_tel.trunks import numbers, numbers_table
from kalliope_tel.trunks import services as trunks
from kalliope_tel.trunks.models import PhoneNumber, SipTrunk

pytestmark = pytest.mark.integration
ACTOR = Actor("partner@provider.test", "api", "127.0.0.1")


def _world(db: Session) -> tuple[Company, Company, Pbx, Pbx, SipTrunk]:
    partner = companies.installation_partner(db)
    uno = companies.create_customer(db, partner, "Uno Srl")
    due = companies.create_customer(db, partner, "Due Srl")
    alfa = manager.create_pbx(db, ACTOR, uno, "alfa")
    beta = manager.create_pbx(db, ACTOR, due, "beta")
    trunks.save_carrier(db, ACTOR, "LabTel", ["sip.example.net", "sbc2.example.net:5080"], "udp", "alaw", True)
    trunk = trunks.create_trunk(db, ACTOR, uno, description="Main", carrier="LabTel", username="uno1",
                                password="s3cret-Pass")  # fmt: skip
    return uno, due, alfa, beta, trunk


def _refused(code: str, work: object) -> KalliopeError:
    with pytest.raises(KalliopeError) as caught:
        work()  # type: ignore[operator]
    assert caught.value.code == code, caught.value
    return caught.value


def test_overlaps_are_refused_with_the_number_they_collide_with(db: Session) -> None:
    uno, _due, alfa, _beta, trunk = _world(db)
    numbers.create_number(db, ACTOR, uno, alfa, "0612345600", 2, trunk.id)  # 06123456XX
    for number, digits in (("0612345678", 0), ("0612345000", 3), ("0612345670", 1), ("0612345600", 2)):
        error = _refused(
            "numbers.overlap", lambda n=number, d=digits: numbers.create_number(db, ACTOR, uno, alfa, n, d, trunk.id)
        )
        assert error.params["other"] == "0612345600"
    # Another length, a neighbouring block: not overlaps.
    numbers.create_number(db, ACTOR, uno, alfa, "061234567", 0, trunk.id)
    numbers.create_number(db, ACTOR, uno, alfa, "0612345700", 2, trunk.id)
    # Deleted: free again at once.
    numbers.delete_number(db, ACTOR, uno, alfa, "0612345600")
    numbers.create_number(db, ACTOR, uno, alfa, "0612345642", 0, trunk.id)
    _refused("numbers.number_form", lambda: numbers.create_number(db, ACTOR, uno, alfa, "06-12", 0, trunk.id))
    _refused("numbers.type_form", lambda: numbers.create_number(db, ACTOR, uno, alfa, "0612349999", 4, trunk.id))


def test_a_trunk_serves_its_company_and_a_partners_trunk_its_customers(db: Session) -> None:
    uno, due, _alfa, beta, trunk = _world(db)
    # Uno's trunk is not Due's: "not found", as a missing one.
    _refused("trunks.no_trunk", lambda: numbers.create_number(db, ACTOR, due, beta, "0298760000", 0, trunk.id))
    _refused("trunks.no_trunk", lambda: trunks.trunk_of(db, due, trunk.id))
    partner = companies.installation_partner(db)
    shared = trunks.create_trunk(db, ACTOR, partner, description="Partner", carrier="LabTel", username="p1",
                                 password="another-Pass1", endpoint="sbc2.example.net:5080")  # fmt: skip
    numbers.create_number(db, ACTOR, due, beta, "0298760000", 0, shared.id)
    values = {"description": "x", "carrier": "LabTel", "username": "uu"}
    _refused(
        "trunks.endpoint", lambda: trunks.create_trunk(db, ACTOR, uno, password="p", endpoint="evil.example", **values)
    )
    _refused("trunks.auth_needs_credentials", lambda: trunks.create_trunk(db, ACTOR, uno, **values))
    _refused("gate.sip_password", lambda: trunks.create_trunk(db, ACTOR, uno, description="x", carrier="LabTel",
                                                              username="uu", password="a;b\n[x]"))  # fmt: skip


def test_a_trunk_with_numbers_is_not_deleted_and_its_password_is_never_logged(db: Session) -> None:
    uno, _due, alfa, _beta, trunk = _world(db)
    numbers.create_number(db, ACTOR, uno, alfa, "0612345600", 2, trunk.id)
    numbers.create_number(db, ACTOR, uno, alfa, "0699000000", 0, trunk.id)
    error = _refused("trunks.trunk_has_numbers", lambda: trunks.delete_trunk(db, ACTOR, uno, trunk))
    assert error.params["numbers"] == "0612345600, 0699000000"
    trunks.update_trunk(db, ACTOR, uno, trunk, password="new-Secret-9")
    log = " ".join(str(e.before) + str(e.after) for e in db.scalars(select(LogEntry)))
    assert "s3cret-Pass" not in log and "new-Secret-9" not in log and "password_set" in log
    for n in ("0612345600", "0699000000"):
        numbers.delete_number(db, ACTOR, uno, alfa, n)
    trunks.delete_trunk(db, ACTOR, uno, trunk)
    _refused("trunks.no_carrier", lambda: trunks.get_carrier(db, "Nobody"))


def test_csv_import_of_1000_numbers_with_two_overlaps_writes_nothing(db: Session, tmp_path: Path) -> None:
    uno, _due, alfa, _beta, trunk = _world(db)
    numbers.create_number(db, ACTOR, uno, alfa, "0311112222", 0, trunk.id)
    rows = [f"0550{i:06d},0,{trunk.id}" for i in range(998)]
    rows.insert(500, f"0311112200,2,{trunk.id}")  # overlaps the stored 0311112222
    rows.insert(700, "0550000000,1,Main")  # overlaps line 2 of this file (0550000000)
    path = tmp_path / "numbers.csv"
    path.write_text("number,type,trunk\n" + "\n".join(rows) + "\n")
    with pytest.raises(ImportRefused) as caught:
        numbers_table.import_file(db, ACTOR, uno, alfa, path)
    assert [(line, err.code) for line, _col, err in caught.value.items] == [
        (502, "numbers.overlap"),
        (702, "numbers.overlap"),
    ]
    assert caught.value.items[0][2].params["other"] == "0311112222"
    assert caught.value.items[1][2].params["other"] == "0550000000"
    assert db.scalars(select(PhoneNumber.number).where(PhoneNumber.number.like("0550%"))).all() == []
    # Without the two: all 998 in, and the export reads back.
    path.write_text("number,type,trunk\n" + "\n".join(r for i, r in enumerate(rows) if i not in (500, 700)) + "\n")
    report = numbers_table.import_file(db, ACTOR, uno, alfa, path)
    assert report["created"] == 998 and numbers.numbers_count(db, alfa) == 999
    exported = numbers_table.export(db, alfa).splitlines()
    assert exported[0] == "number,type,trunk,block,carrier,status" and len(exported) == 1000


def test_the_generator_writes_trunks_numbers_and_groups(db: Session) -> None:
    uno, due, alfa, beta, trunk = _world(db)
    numbers.create_number(db, ACTOR, uno, alfa, "0612345600", 2, trunk.id)
    manager.create_extension(db, ACTOR, uno, alfa, "42")
    manager.create_extension(db, ACTOR, due, beta, "301")
    group = groups.create_group(db, ACTOR, uno, "Campus", "numbering")
    groups.join_group(db, ACTOR, uno, alfa, group)
    groups.join_group(db, ACTOR, due, beta, group)
    _refused("extension.taken_in_group", lambda: manager.create_extension(db, ACTOR, due, beta, "42"))
    files = render(db, alfa, "PJSIP/{account}", enabled_features()).files
    pjsip = files[f"kalliope/pjsip_trunk-{trunk.id}.conf"]
    assert "type = registration" in pjsip and "password = s3cret-Pass" in pjsip and "line = yes" in pjsip
    inbound = files[f"kalliope/extensions_trunk-{trunk.id}.conf"]
    assert "exten => _06123456XX,1,Goto(kt-alfa-did,${EXTEN},1)" in inbound
    alfa_text = files["kalliope/extensions_alfa.conf"]
    assert "exten => _06123456XX,1,Goto(kt-alfa-did-2,${EXTEN:-2},1)" in alfa_text
    assert "[kt-alfa-did-2]\nexten => 42,1,Goto(kt-alfa-from-trunk,42,1)\nexten => _XX,1,Hangup(1)" in alfa_text
    assert f"include => ktx-group-{group.id}" in files["kalliope/extensions_alfa.conf"]
    group_text = files[f"kalliope/extensions_group-{group.id}.conf"]
    assert "exten => 301,1,Goto(" in group_text and "Set(__KALLIOPE_PBX=beta)" in group_text
    # Beta (another company) renders the group, not Uno's trunk.
    beta_files = render(db, beta, "PJSIP/{account}", enabled_features()).files
    assert f"kalliope/extensions_group-{group.id}.conf" in beta_files
    assert not any("trunk-" in name for name in beta_files)
    # Suspended: the trunk refuses alfa's numbers with the PBX's cause, after its announcement.
    alfa.suspended_announcement, alfa.suspended_cause = "ss-noservice", 1
    manager.set_pbx_suspended(db, ACTOR, uno, alfa, True)
    inbound = render(db, alfa, "PJSIP/{account}", enabled_features()).files[
        f"kalliope/extensions_trunk-{trunk.id}.conf"
    ]
    assert "Playback(ss-noservice,noanswer)" in inbound and "Hangup(1)" in inbound and "kt-alfa-did" not in inbound
