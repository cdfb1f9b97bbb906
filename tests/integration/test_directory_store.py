"""What the directory publishes, on both stores, without a directory: the
three publishing modes of an extension (the user's e-mail and department
only in "full"), rooms under their room names and the hotel's modes, the
phonebook flag, suspended extensions and PBXs left out; the plan from what
LDAP holds to what the store wants; the XML phonebooks (values escaped);
and the bench's small variant against a private slapd."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy.orm import Session

from kalliope_tel.accounts import services as accounts
from kalliope_tel.directory import ldap_tree, phonebooks
from kalliope_tel.directory.entries import directory_of, entries
from kalliope_tel.extensions.models import DirectoryMode, ExtensionStatus
from kalliope_tel.groups import services as groups
from kalliope_tel.hotel import services as hotel
from kalliope_tel.hotel.directory import rooms
from kalliope_tel.omnia import manager
from kalliope_tel.oplog.services import Actor
from kalliope_tel.tenancy import companies
from kalliope_tel.users import services as users
from tests.conftest import kalliope

pytestmark = pytest.mark.integration

ACTOR = Actor("t", "cli")


def test_publishing_modes_rooms_and_the_phonebook(db: Session) -> None:
    partner = companies.installation_partner(db)
    uno = companies.create_customer(db, partner, "Uno Srl")
    pbx = manager.create_pbx(db, ACTOR, uno, "alfa", hotel_enabled=True)
    account = accounts.create_account(db, "anna@uno.test", "Anna", "Neri")
    accounts.join_company(db, account, uno, department="Sales")
    user = users.add_user(db, pbx, "anna", "anna@uno.test", "Anna")
    for number, mode in (("201", DirectoryMode.FULL), ("202", DirectoryMode.BASIC), ("203", DirectoryMode.NONE)):
        manager.create_extension(db, ACTOR, uno, pbx, number, name=f"Ext <{number}> & co")
        manager.update_extension(
            db, ACTOR, uno, pbx, number, directory_mode=mode, user=user.name if number < "203" else None
        )
    manager.create_extension(db, ACTOR, uno, pbx, "204", name="Gone")
    manager.set_extension_status(db, ACTOR, uno, pbx, "204", ExtensionStatus.SUSPENDED)
    manager.update_extension(db, ACTOR, uno, pbx, "202", show_in_phonebook=False)
    hotel.ensure_default_classes(db, pbx, "kt-lab-trunk")
    hotel.create_template(db, pbx, "std", ldap_mode="public")
    hotel.create_room(db, pbx, "101", "Room Rose", "std")
    found = {e.number: e for e in entries(db, pbx, rooms)}
    assert set(found) == {"101", "201", "202", "203"}  # the suspended one is left out
    assert (found["201"].mail, found["201"].department) == ("anna@uno.test", "Sales")
    assert (found["202"].mail, found["202"].ldap, found["202"].phonebook) == ("", True, False)
    assert (found["203"].ldap, found["203"].phonebook) == (False, False)
    assert (found["101"].name, found["101"].mail, found["101"].ldap) == ("Room Rose", "", True)
    # The plan: add what is missing, change what differs, remove what went.
    wanted = ldap_tree.published(list(found.values()))
    held = {"201": wanted["201"], "202": {"cn": [b"Old"], "sn": [b"Old"], "telephoneNumber": [b"202"]}, "999": {}}
    plan = ldap_tree.plan(held, wanted)
    assert (sorted(plan.add), sorted(plan.modify), plan.delete) == (["101"], ["202"], ["999"])
    # Phonebooks: parsed back, escaped, only the entries marked for them.
    book = ET.fromstring(phonebooks.render("yealink", list(found.values())))
    assert sorted(e.findtext("Name") or "" for e in book.iter("DirectoryEntry")) == ["Ext <201> & co", "Room Rose"]
    # Suspended PBX: nothing.
    manager.set_pbx_suspended(db, ACTOR, uno, pbx, True)
    assert entries(db, pbx, rooms) == []


def test_a_numbering_groups_phones_see_the_groups_entries(db: Session) -> None:
    partner = companies.installation_partner(db)
    uno, due = (companies.create_customer(db, partner, name) for name in ("Uno Srl", "Due Srl"))
    alfa = manager.create_pbx(db, ACTOR, uno, "alfa", name="Alfa")
    beta = manager.create_pbx(db, ACTOR, due, "beta", name="Beta")
    gamma = manager.create_pbx(db, ACTOR, due, "gamma", name="Gamma")
    manager.create_extension(db, ACTOR, uno, alfa, "201", name="Anna")
    manager.create_extension(db, ACTOR, due, beta, "301", name="Bruno")
    manager.create_extension(db, ACTOR, due, gamma, "401", name="Carla")
    group = groups.create_group(db, ACTOR, partner, "Campus", "numbering")
    for company, pbx in ((uno, alfa), (due, beta)):
        groups.join_group(db, ACTOR, company, pbx, group)
    seen = {(e.number, e.name, e.organization) for e in directory_of(db, alfa, None)}
    assert seen == {("201", "Anna", ""), ("301", "Bruno", "Beta")}  # not gamma's, outside the group
    assert {e.number for e in directory_of(db, gamma, None)} == {"401"}
    # A shared group shares ring groups and BLF, not the numbering plan: no directory across it.
    groups.delete_group(db, ACTOR, partner, group)
    shared = groups.create_group(db, ACTOR, partner, "Desk", "shared")
    groups.join_group(db, ACTOR, uno, alfa, shared)
    groups.join_group(db, ACTOR, due, beta, shared)
    assert {e.number for e in directory_of(db, alfa, None)} == {"201"}


def test_bench_directory_small_variant() -> None:
    result = kalliope("bench", "directory", "--entries", "200", "--per-pbx", "100", "--changes", "5", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    assert figures["entries"] == 200 and figures["pbxs"] == 2
    assert 0 < figures["change_to_ldap_p50_ms"] <= figures["change_to_ldap_p99_ms"] < 10_000
