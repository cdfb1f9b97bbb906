"""Massive import of rooms through the CLI, from CSV and XLSX, on both databases."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from kalliope_tel.hotel.importer import COLUMNS
from tests.conftest import kalliope

pytestmark = pytest.mark.integration


def rows(count: int) -> list[dict[str, str]]:
    return [
        {
            "extension": str(1000 + i),
            "name": f"Room {1000 + i}",
            "template": "std",
            "building": "Main" if i % 2 else "Annex",
            "floor": str(i // 50),
            "new_accounts": "1",
            "failovers": "noanswer.internal=600",
        }
        for i in range(count)
    ]


def write_csv(path: Path, data: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(data)


def write_xlsx(path: Path, data: list[dict[str, str]]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(COLUMNS)
    for row in data:
        sheet.append([int(row[c]) if row.get(c, "").isdigit() else row.get(c) for c in COLUMNS])
    book.save(path)


@pytest.fixture
def env(fresh_db_url: str) -> dict[str, str]:
    env = {"KALLIOPE_DATABASE_URL": fresh_db_url}
    for args in (["db", "upgrade"], ["hotel", "classes", "init"], ["hotel", "templates", "add", "std"]):
        result = kalliope(*args, env=env)
        assert result.returncode == 0, result.stderr
    return env


def room_count(env: dict[str, str]) -> int:
    result = kalliope("hotel", "rooms", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return len(json.loads(result.stdout))


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_import_500_rooms(env: dict[str, str], tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"rooms.{fmt}"
    (write_csv if fmt == "csv" else write_xlsx)(path, rows(500))
    result = kalliope("hotel", "rooms", "import", str(path), "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["imported"] == 500 and report["skipped"] == []
    assert len(report["credentials"]) == 500
    assert room_count(env) == 500
    floor3 = json.loads(kalliope("hotel", "rooms", "list", "--floor", "3", "--json", env=env).stdout)
    assert len(floor3) == 50 and floor3[0]["failovers"] == {"noanswer.internal": "600"}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_one_bad_row_imports_nothing_and_names_it(env: dict[str, str], tmp_path: Path, fmt: str) -> None:
    data = rows(20)
    data[12]["template"] = "no-such-template"  # line 14: header is line 1
    path = tmp_path / f"rooms.{fmt}"
    (write_csv if fmt == "csv" else write_xlsx)(path, data)
    result = kalliope("hotel", "rooms", "import", str(path), env=env)
    assert result.returncode == 1
    assert "line 14: no room template named 'no-such-template'" in result.stderr
    assert "nothing imported" in result.stderr
    assert room_count(env) == 0

    skipped = kalliope("hotel", "rooms", "import", str(path), "--skip-bad", "--json", env=env)
    report = json.loads(skipped.stdout)
    assert report["imported"] == 19 and report["skipped"] == [[14, "no room template named 'no-such-template'"]]
    assert room_count(env) == 19


def test_duplicate_and_malformed_rows_all_reported(env: dict[str, str], tmp_path: Path) -> None:
    data = rows(5)
    data[3]["extension"] = data[1]["extension"]
    data[4]["calls_limit"] = "many"
    path = tmp_path / "rooms.csv"
    write_csv(path, data)
    result = kalliope("hotel", "rooms", "import", str(path), env=env)
    assert result.returncode == 1
    assert "line 5: extension 1001 also on line 3" in result.stderr
    assert "line 6: calls_limit must be a whole number" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"extension,colour\n101,red\n", "unknown column(s) colour"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_broken_files_are_refused_clearly(env: dict[str, str], tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "rooms.csv"
    path.write_bytes(content)
    result = kalliope("hotel", "rooms", "import", str(path), env=env)
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_xlsx_and_template_files(env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "rooms.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    result = kalliope("hotel", "rooms", "import", str(broken), env=env)
    assert result.returncode == 1 and "not a readable XLSX file" in result.stderr
    for name in ("template.csv", "template.xlsx"):
        out = tmp_path / name
        assert kalliope("hotel", "rooms", "import-template", str(out), env=env).returncode == 0
        assert kalliope("hotel", "templates", "add", "standard-room", env=env).returncode in (0, 1)
        imported = kalliope("hotel", "rooms", "import", str(out), "--json", env=env)
        assert imported.returncode == 0 or "extension 101 is a room already" in imported.stderr, imported.stderr
    assert room_count(env) == 1
