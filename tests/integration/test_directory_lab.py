"""The directory on Debian's slapd, both stores, with serve keeping it in
step: rooms and extensions published per their modes; 'ldapsearch' (Debian's
ldap-utils) bound as PBX alfa's phones finds alfa's entries by name prefix
and by number and none of beta's; an unpublished room is absent; a rename is
found within 5 s; a deleted room is gone. Privacy: a guest's name is not
published unless the hotel allows it, then appears at check-in and goes at
check-out. The XML phonebooks parse and match LDAP; wrong credentials get
401. slapd stopped while rooms change: after it restarts the directory
equals the store ('directory status')."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kalliope_tel.config import Settings
from kalliope_tel.container import Container
from kalliope_tel.db import migrate
from kalliope_tel.db.engine import transaction
from kalliope_tel.directory.link import phones_dn
from kalliope_tel.directory.slapd import Slapd, SlapdState, phones_password
from kalliope_tel.extensions.models import DirectoryMode, Extension
from kalliope_tel.hotel import services as hotel
from kalliope_tel.hotel import stays
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.omnia import manager
from kalliope_tel.oplog.services import Actor
from kalliope_tel.tenancy import companies
from kalliope_tel.tenancy.models import Pbx
from tests.conftest import kalliope
from tests.helpers import ServeNode, serve_env
from tests.integration.test_wakeup_serve import stop

pytestmark = [pytest.mark.integration, pytest.mark.asterisk, pytest.mark.both_stores, pytest.mark.timeout(240)]
ACTOR = Actor("partner@provider.test", "api", "127.0.0.1")


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[tuple[Slapd, SlapdState]]:
    server = Slapd(tmp_path / "directory")
    state = server.start()
    yield server, state
    server.stop()


def _setup(url: str, directory: Path) -> Container:
    container = Container(Settings(database_url=url, directory_dir=directory))
    migrate.upgrade(container.engine)
    with transaction(container.sessions) as s:
        partner = companies.installation_partner(s)
        uno = companies.create_customer(s, partner, "Uno Srl")
        due = companies.create_customer(s, partner, "Due Srl")
        alfa = manager.create_pbx(s, ACTOR, uno, "alfa", name="Hotel Alfa", hotel_enabled=True)
        beta = manager.create_pbx(s, ACTOR, due, "beta", name="Beta")
        hotel.ensure_default_classes(s, alfa, "kt-lab-trunk")
        hotel.create_template(s, alfa, "std", ldap_mode="internal", organization="Main", organizational_unit="1")
        hotel.create_template(s, alfa, "hidden", ldap_mode="none")
        hotel.create_room(s, alfa, "101", "Room Rose", "std")
        hotel.create_room(s, alfa, "102", "Room Ruby", "std")
        hotel.create_room(s, alfa, "103", "Room Secret", "hidden")
        manager.create_extension(s, ACTOR, uno, alfa, "201", name="Reception Desk")
        manager.create_extension(s, ACTOR, due, beta, "301", name="Rosa Beta")
    return container


def _search(state: SlapdState, slug: str, filter_: str, base_slug: str | None = None) -> tuple[int, list[str]]:
    """ldapsearch bound as the PBX's phones (the password in a 0600 file, never argv): exit code and names."""
    with tempfile.NamedTemporaryFile("w", delete=False) as handle:
        handle.write(phones_password(state.phones_secret, slug))
    os.chmod(handle.name, 0o600)
    try:
        result = subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-H", state.url, "-D", phones_dn(state.base_dn, slug), "-y", handle.name,
             "-b", f"ou={base_slug or slug},{state.base_dn}", filter_, "cn"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    finally:
        os.unlink(handle.name)
    return result.returncode, sorted(re.findall(r"^cn: (.+)$", result.stdout, re.M))


def _wait(what: str, check: Any, seconds: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, what
        time.sleep(0.1)
    return time.monotonic() - started


def _do(container: Container, work: Any) -> Any:
    with transaction(container.sessions) as s:
        pbxs = {p.slug: p for p in s.scalars(select(Pbx))}
        return work(s, pbxs)


def _web_port(proc: ServeNode) -> int:
    found = re.search(r'"port": (\d+), "event": "web.listening"', proc.output())
    return int(found.group(1)) if found else 0


def test_rooms_and_extensions_published_to_slapd_and_phonebooks(
    lab: LabInstance, lab_state: LabState, fresh_db_url: str, slapd: tuple[Slapd, SlapdState]
) -> None:
    server, state = slapd
    container = _setup(fresh_db_url, server.dir)
    env = serve_env(lab_state, fresh_db_url, KALLIOPE_AGI_BIND=lab_state.agi_bind, KALLIOPE_NODE_NAME="dir-node",
                    KALLIOPE_DIRECTORY_DIR=str(server.dir))  # fmt: skip
    proc = ServeNode(env)
    try:
        _wait("alfa published", lambda: _search(state, "alfa", "(cn=*)")[1] != [], 30)
        # By name prefix and by number; the unpublished room is absent; nothing of beta's.
        assert _search(state, "alfa", "(cn=Room*)")[1] == ["Room Rose", "Room Ruby"]
        assert _search(state, "alfa", "(telephoneNumber=201)")[1] == ["Reception Desk"]
        assert _search(state, "alfa", "(telephoneNumber=103)")[1] == []
        assert _search(state, "alfa", "(cn=Rosa*)")[1] == []  # beta's "Rosa Beta" is not alfa's
        code, names = _search(state, "alfa", "(cn=*)", base_slug="beta")
        assert names == [] and code == 32, code  # beta's subtree does not exist for alfa's phones
        assert _search(state, "beta", "(cn=Rosa*)")[1] == ["Rosa Beta"]
        # An extension not published.
        _do(container, lambda s, p: setattr(s.scalars(select(Extension).where(Extension.number == "201")).one(),
                                             "directory_mode", DirectoryMode.NONE))  # fmt: skip
        _wait("201 unpublished", lambda: _search(state, "alfa", "(telephoneNumber=201)")[1] == [], 5)

        # Rename within 5 s; delete gone.
        _do(container, lambda s, p: hotel.update_room(s, p["alfa"], "101", name="Room Lotus"))
        took = _wait("the rename", lambda: _search(state, "alfa", "(cn=Room Lotus)")[1] == ["Room Lotus"], 5)
        _do(container, lambda s, p: hotel.delete_room(s, p["alfa"], "102"))
        _wait("the deletion", lambda: _search(state, "alfa", "(telephoneNumber=102)")[1] == [], 5)

        # Privacy: the guest's name only where the hotel allows it, from check-in to check-out.
        _do(container, lambda s, p: stays.check_in(s, p["alfa"], "101", "Mario Rossi"))
        time.sleep(1.5)  # a round or three: still the room's name only
        assert _search(state, "alfa", "(cn=*Rossi*)")[1] == []
        _do(container, lambda s, p: hotel.update_settings(s, p["alfa"], directory_guest_names=True))
        _wait("the guest's name", lambda: _search(state, "alfa", "(cn=*Rossi*)")[1] == ["Room Lotus Mario Rossi"], 5)
        _do(container, lambda s, p: stays.check_out(s, p["alfa"], "101"))
        _wait("the name gone at check-out", lambda: _search(state, "alfa", "(cn=*Rossi*)")[1] == [], 5)

        # The XML phonebooks: parsed, equal to LDAP's names; wrong credentials refused.
        port = _web_port(proc)
        url = f"http://127.0.0.1:{port}/directory/alfa/"
        auth = ("phones", phones_password(state.phones_secret, "alfa"))
        ldap_names = _search(state, "alfa", "(cn=*)")[1]
        for kind in ("yealink", "snom"):
            root = ET.fromstring(httpx.get(url + f"{kind}.xml", auth=auth).content)
            assert sorted(e.findtext("Name") or "" for e in root.iter("DirectoryEntry")) == ldap_names
        book = ET.fromstring(httpx.get(url + "grandstream.xml", auth=auth).content)
        assert sorted(c.findtext("Phone/phonenumber") or "" for c in book.iter("Contact")) == ["101"]
        beta_auth = ("phones", phones_password(state.phones_secret, "beta"))
        assert httpx.get(url + "yealink.xml", auth=beta_auth).status_code == 401
        assert httpx.get(url + "yealink.xml").status_code == 401

        # slapd stopped while rooms change: nothing lost.
        server.stop()
        _do(container, lambda s, p: hotel.update_room(s, p["alfa"], "101", name="Room Iris"))
        _do(container, lambda s, p: hotel.create_room(s, p["alfa"], "104", "Room Jade", "std"))
        time.sleep(1.5)
        server.start()
        _wait("in step again", lambda: kalliope("directory", "status", "--json", env=env).returncode == 0, 40)
        assert _search(state, "alfa", "(cn=Room*)")[1] == ["Room Iris", "Room Jade"]
        report = json.loads(kalliope("directory", "status", "--json", env=env).stdout)
        assert all(row["in_step"] for row in report["pbxs"]) and report["reachable"]
        assert took < 5
    except AssertionError:
        print(stop(proc)[-4000:])
        raise
    finally:
        if proc.poll() is None:
            stop(proc)
        container.close()
