"""The wheel installs agi/, ari_apps/ and dialplan/ inside kalliope_tel, never
as top-level packages with generic names, and carries its data files."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv builds the wheel (bootstrap installs it)")
def test_wheel_nests_the_top_level_folders_in_the_package(tmp_path: Path) -> None:
    subprocess.run(["uv", "build", "-q", "--wheel", "-o", str(tmp_path), str(ROOT)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"kalliope_tel"}, tops
    for needed in (
        "kalliope_tel/agi/hotel.py",
        "kalliope_tel/ari_apps/fax.py",
        "kalliope_tel/dialplan/generator.py",
        "kalliope_tel/dialplan/extensions_kalliope.conf",
        "kalliope_tel/_sql/env.py",
        "kalliope_tel/_asterisk_conf/manager.conf",
    ):
        assert needed in names, needed
