"""The one sanitiser for names from outside (uploads, attachments, call ids)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalliope_tel.files import safe_file_name

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\evil.pdf", "evil.pdf"),
        (".bashrc", "bashrc"),
        ("...", "document"),
        ("", "document"),
        ("a\r\nSubject: x.pdf", "a_Subject_x.pdf"),
        ("fattura è.pdf", "fattura_.pdf"),
        ("1700000000.1234", "1700000000.1234"),
    ],
)
def test_hostile_names_become_one_plain_component(raw: str, expected: str) -> None:
    assert safe_file_name(raw) == expected


def test_a_long_name_is_cut_before_its_suffix() -> None:
    name = safe_file_name("x" * 500 + ".docx", 80)
    assert len(name) == 80 and name.endswith(".docx")


@given(st.text(max_size=300))
def test_any_name_is_safe_on_disk_and_in_a_header(raw: str) -> None:
    name = safe_file_name(raw, 120)
    assert 0 < len(name) <= 120
    assert not name.startswith(".") and "/" not in name and "\\" not in name
    assert all(c.isascii() and (c.isalnum() or c in "._+-") for c in name)
