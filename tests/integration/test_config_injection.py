"""Nothing an operator or an import types can add to Asterisk's configuration.

Issue 11 reproduced it: a room name with a line break gave Asterisk a new
context running ``System()``, and a caller-ID label could add a PJSIP
endpoint with known credentials. Every free-text field now passes
``kalliope_tel.asterisk.confgate``; these tests render arbitrary Unicode and
check the files both with a model of Asterisk's parser (many examples) and on
the real lab Asterisk, counting what it loaded (fewer examples, each a reload).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from kalliope_tel.asterisk import confgate
from kalliope_tel.asterisk.apply import remove_files, write_files
from kalliope_tel.dialplan.generator import LAB_DEVICE, render
from kalliope_tel.extensions import accounts as ext_accounts
from kalliope_tel.hotel import services as hotel
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.tenancy.services import create_pbx
from tests.conftest import kalliope, lab_env

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]

EVIL_DIALPLAN = "x)\n[evil2]\nexten => 667,1,System(id)"
EVIL_PJSIP = 'Lobby" <1>\n[evilep]\ntype=endpoint\ncontext=kt-lab-trunk\nidentify_by=ip'
# Free text as an operator, an XLSX cell or a web form can give it: any
# Unicode but lone surrogates (no decoded input holds them) and NUL
# (PostgreSQL refuses it in text columns before anything renders).
FREE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)
HOSTILE = st.one_of(
    FREE_TEXT,
    st.sampled_from([EVIL_DIALPLAN, EVIL_PJSIP, ";--\n[x]\n--;", "a\\\n[y]", "\u2028[z]", "#include /etc/passwd"]),
)


# ------------------------------------------------------------ a model of Asterisk's parser
def parse_sections(text: str) -> list[tuple[str, int]]:
    """Sections and their count of effective lines, as main/config.c reads them:
    ``;`` comments (``\\;`` escaped), ``;-- --;`` block comments, ``[name]``
    headers, ``#include``/``#exec`` directives (counted as a section of their own)."""
    sections: list[tuple[str, int]] = [("", 0)]
    depth = 0
    for raw in text.split("\n"):
        line, out, i = raw, [], 0
        while i < len(line):
            if line.startswith(";--", i) and not line.startswith(";---", i):
                depth += 1
                i += 3
            elif depth and line.startswith("--;", i):
                depth -= 1
                i += 3
            elif line[i] == ";" and not depth:
                if i and line[i - 1] == "\\":
                    out[-1] = ";"
                    i += 1
                    continue
                break
            else:
                if not depth:
                    out.append(line[i])
                i += 1
        effective = "".join(out).strip()
        if not effective:
            continue
        if effective.startswith("#"):
            sections.append((f"directive:{effective}", 0))
        elif effective.startswith("["):
            sections.append((effective[1 : effective.index("]")] if "]" in effective else effective, 0))
        else:
            name, count = sections[-1]
            sections[-1] = (name, count + 1)
    return sections


@dataclass
class Scene:
    db: Session
    pbx: Pbx

    def set_texts(self, room_name: str, template_name: str, class_text: str, pbx_name: str) -> dict[str, str]:
        room = hotel.get_room(self.db, self.pbx, "302")
        room.name = room_name[:80]
        room.template.name = template_name[:60]  # the column's length
        for cls in ext_accounts.list_classes(self.db, self.pbx):
            cls.description = class_text
        self.pbx.name = pbx_name
        self.db.flush()
        return render(self.db, self.pbx, LAB_DEVICE).files


@pytest.fixture
def scene(db: Session) -> Iterator[Scene]:
    pbx = create_pbx(db, "inj", "Injection")
    hotel.ensure_default_classes(db, pbx, "kt-lab-trunk")
    hotel.create_template(db, pbx, "std")
    hotel.create_room(db, pbx, "302", "x", "std", new_accounts=1)
    hotel.create_room(db, pbx, "303", "y", "std", new_accounts=1)
    yield Scene(db, pbx)


def test_identifiers_need_a_full_match(db: Session) -> None:
    pbx = create_pbx(db, "idents", "Identifiers")
    hotel.ensure_default_classes(db, pbx, "kt-lab-trunk")
    hotel.create_template(db, pbx, "std")
    for bad in ("101\n", "101\n[evil]", " 101", "\uff11\uff10\uff11"):
        with pytest.raises(hotel.InvalidValue, match="extension"):
            hotel.create_room(db, pbx, bad, "x", "std")
    with pytest.raises(hotel.InvalidValue, match="SIP user name"):
        ext_accounts.create_account(db, pbx, "abc\n")
    with pytest.raises(hotel.InvalidValue, match="pattern"):
        ext_accounts.create_class(db, pbx, "evil", ["112\n"], "kt-lab-trunk")
    with pytest.raises(hotel.InvalidValue, match="trunk context"):
        ext_accounts.create_class(db, pbx, "evil", ["112"], "ctx\n[evil]")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(room=HOSTILE, template=HOSTILE, description=HOSTILE, pbx_name=HOSTILE)
def test_free_text_never_changes_the_parsed_structure(
    scene: Scene, room: str, template: str, description: str, pbx_name: str
) -> None:
    baseline = {name: parse_sections(text) for name, text in scene.set_texts("a", "t", "d", "p").items()}
    hostile = scene.set_texts(room, template or "t", description, pbx_name)
    assert {name: parse_sections(text) for name, text in hostile.items()} == baseline


# ------------------------------------------------------------ on the lab Asterisk
def loaded_counts(lab: LabInstance) -> tuple[str, int]:
    lab.cli("dialplan reload")
    lab.cli("module reload res_pjsip.so")
    summary = re.search(r"-= (\d+) extensions? \((\d+) priorit\w+\) in (\d+) contexts?\. =-", lab.cli("dialplan show"))
    endpoints = re.search(r"Objects found: (\d+)", lab.cli("pjsip show endpoints"))
    assert summary is not None
    return summary.group(0), int(endpoints.group(1)) if endpoints else 0


def test_hostile_text_on_the_lab_adds_nothing(scene: Scene, lab: LabInstance) -> None:
    etc = lab.dir / "etc"
    try:
        write_files(etc, scene.set_texts("a", "t", "d", "p"))
        expected = loaded_counts(lab)
        assert expected[1] >= 2  # the PBX's two room endpoints are loaded

        @settings(max_examples=25, deadline=None)
        @given(room=HOSTILE, template=HOSTILE, description=HOSTILE, pbx_name=HOSTILE)
        def check(room: str, template: str, description: str, pbx_name: str) -> None:
            write_files(etc, scene.set_texts(room, template or "t", description, pbx_name))
            assert loaded_counts(lab) == expected
            assert "evil" not in lab.cli("dialplan show").lower()

        check()
        write_files(etc, scene.set_texts(EVIL_DIALPLAN, EVIL_DIALPLAN, EVIL_DIALPLAN, EVIL_PJSIP))
        assert loaded_counts(lab) == expected
        write_files(etc, scene.set_texts(EVIL_PJSIP, "t", EVIL_PJSIP, EVIL_PJSIP))
        assert loaded_counts(lab) == expected
        assert "evilep" not in lab.cli("pjsip show endpoints")
    finally:
        remove_files(etc, list(render(scene.db, scene.pbx, LAB_DEVICE).files))
        lab.cli("dialplan reload")


def test_the_reported_injection_through_the_cli(fresh_db_url: str, lab_state: LabState, lab: LabInstance) -> None:
    """The issue's reproduction, as an operator typed it, then 'asterisk apply' on the lab."""
    env = lab_env(lab_state, KALLIOPE_DATABASE_URL=fresh_db_url)

    def ok(*args: str) -> str:
        result = kalliope(*args, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    ok("db", "upgrade")
    ok("pbx", "add", "evilpbx", "--name", "Injection check")
    hotel_args = ("hotel", "--pbx", "evilpbx")
    ok(*hotel_args, "classes", "init", "--trunk-context", "kt-lab-trunk")
    ok(*hotel_args, "templates", "add", "std")
    ok(*hotel_args, "rooms", "add", "302", "--template", "std", "--name", EVIL_DIALPLAN, "--new-accounts", "1")
    ok(*hotel_args, "rooms", "add", "303", "--template", "std", "--name", EVIL_PJSIP, "--new-accounts", "1")
    try:
        ok("asterisk", "apply", "--pbx", "evilpbx")
        assert "no existence of 'evil2'" in lab.cli("dialplan show evil2", check=False)
        room = lab.cli("dialplan show kt-evilpbx-room-302")
        assert "System" not in room and "667" not in room
        endpoints = lab.cli("pjsip show endpoints")
        assert "evilep" not in endpoints
        assert set(re.findall(r"Endpoint:\s+(evilpbx-\S+?)/", endpoints)) == {"evilpbx-302", "evilpbx-303"}
        label = lab.cli("pjsip show endpoint evilpbx-303")
        shown = confgate.callerid_label(EVIL_PJSIP)
        assert shown.startswith("Lobby 1 evilep type=endpoint") and "[" not in shown and "\n" not in shown
        assert f'"{shown}" <303>' in label
    finally:
        ok("pbx", "remove", "evilpbx", "--yes")
