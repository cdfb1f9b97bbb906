"""``kalliope-tel billing`` as an operator runs it: profiles and rules,
duplicates refused with the reason (exit 1, nothing changed), CSV export and
import round trip, calls and rooms in JSON; everything inside its PBX."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import kalliope

pytestmark = [pytest.mark.integration, pytest.mark.commands]


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return kalliope(*args, env={"KALLIOPE_DATABASE_URL": url})


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


def test_profiles_rules_csv_and_pbx_isolation(fresh_db_url: str, tmp_path: Path) -> None:
    url = fresh_db_url
    _ok(_cli(url, "db", "upgrade"))
    _ok(_cli(url, "billing", "profiles", "add", "carrier", "--line", "my-trunk", "--json"))
    _ok(_cli(url, "billing", "profiles", "add", "default", "--currency", "EUR"))
    added = json.loads(
        _ok(
            _cli(url, "billing", "rules", "add", "carrier", "--prefix", "39", "--per-minute", "0.12", "--fee", "0.05",
                 "--increments", "30/6", "--json")
        ).stdout
    )  # fmt: skip
    assert added == {
        "match": "prefix", "digits": "39", "connection_fee": "0.0500", "per_minute": "0.1200",
        "first_increment": 30, "next_increment": 6, "minimum": "0.0000", "currency": "EUR", "description": "",
    }  # fmt: skip
    _ok(_cli(url, "billing", "rules", "add", "carrier", "--exact", "112", "--per-minute", "0", "--increments", "1/1"))
    duplicate = _cli(url, "billing", "rules", "add", "carrier", "--prefix", "39", "--per-minute", "0.5")
    assert duplicate.returncode == 1 and "already has a rule for prefix 39" in duplicate.stderr
    neither = _cli(url, "billing", "rules", "add", "carrier", "--per-minute", "0.5")
    assert neither.returncode == 1 and "--exact NUMBER, --prefix DIGITS or --other" in neither.stderr
    line_taken = _cli(url, "billing", "profiles", "add", "again", "--line", "my-trunk")
    assert line_taken.returncode == 1 and "already prices line 'my-trunk'" in line_taken.stderr

    exported = tmp_path / "carrier.csv"
    _ok(_cli(url, "billing", "rules", "export", "carrier", str(exported)))
    assert exported.read_text().splitlines()[1:] == [
        "exact,112,0.0000,0.0000,1,1,0.0000,EUR,",
        "prefix,39,0.0500,0.1200,30,6,0.0000,EUR,",
    ]
    imported = json.loads(_ok(_cli(url, "billing", "rules", "import", "default", str(exported), "--json")).stdout)
    assert imported == {"imported": 2, "replaced": False}
    bad = tmp_path / "bad.csv"
    bad.write_text("match,digits,per_minute\nprefix,44,0.1\nexact,+39 06,0.2\n")
    refused = _cli(url, "billing", "rules", "import", "default", str(bad), "--replace")
    assert refused.returncode == 1 and "CSV line 3" in refused.stderr
    shown = json.loads(_ok(_cli(url, "billing", "profiles", "show", "default", "--json")).stdout)
    assert [r["digits"] for r in shown["rules"]] == ["112", "39"]  # the refused file changed nothing
    _ok(_cli(url, "billing", "rules", "remove", "default", "--exact", "112"))
    assert [
        r["digits"] for r in json.loads(_ok(_cli(url, "billing", "rules", "list", "default", "--json")).stdout)
    ] == ["39"]

    assert json.loads(_ok(_cli(url, "billing", "calls", "--json")).stdout) == []
    assert json.loads(_ok(_cli(url, "billing", "rooms", "--json")).stdout) == {}
    # Another PBX sees none of it, and may reuse the names.
    _ok(_cli(url, "pbx", "add", "acme", "--name", "Acme"))
    assert json.loads(_ok(_cli(url, "billing", "--pbx", "acme", "profiles", "list", "--json")).stdout) == []
    missing = _cli(url, "billing", "--pbx", "acme", "rules", "list", "carrier")
    assert missing.returncode == 1 and "no cost profile 'carrier' in PBX acme" in missing.stderr
    _ok(_cli(url, "billing", "--pbx", "acme", "profiles", "add", "carrier", "--line", "my-trunk"))
    gone = _cli(url, "billing", "report", "999", "--json")
    assert gone.returncode == 1 and "no stay 999" in gone.stderr


def test_reconcile_reads_the_cdr_file_once(fresh_db_url: str, tmp_path: Path) -> None:
    """'billing reconcile --import-past' records the file's calls once (a
    second run finds them recorded) and names a malformed line by its offset;
    a store that never saw the file otherwise starts at its end."""
    cdr_file = tmp_path / "kalliope-cdr.json"
    line = {
        "uniqueid": "1795940007.1", "linkedid": "1795940007.1", "sequence": 1, "channel": "PJSIP/101-00000001",
        "dstchannel": "PJSIP/my-trunk-0000000a", "lastapp": "Dial", "disposition": "ANSWERED",
        "start": 1795940000.0, "answer": 1795940002.0, "end": 1795940009.0, "duration": 9, "billsec": 7,
        "kt_pbx": "default", "kt_from": "101", "kt_dialled": "0612345678", "kt_out": "standard", "kt_line": "",
    }  # fmt: skip
    cdr_file.write_text(json.dumps(line) + "\n{broken\n")
    env = {
        "KALLIOPE_DATABASE_URL": fresh_db_url,
        "KALLIOPE_ARI_URL": "http://127.0.0.1:9/ari",  # never contacted: only the CDR file is read
        "KALLIOPE_AMI_URL": "tcp://127.0.0.1:9",
        "KALLIOPE_CDR_FILE": str(cdr_file),
    }
    _ok(kalliope("db", "upgrade", env=env))
    first = json.loads(_ok(kalliope("billing", "reconcile", "--import-past", "--json", env=env)).stdout)
    assert (first["lines"], first["recorded"]) == (2, 1)
    assert len(first["refused"]) == 1 and first["refused"][0].startswith("offset ")
    again = json.loads(_ok(kalliope("billing", "reconcile", "--json", env=env)).stdout)
    assert (again["lines"], again["recorded"]) == (0, 0)  # the cursor kept its place
    calls = json.loads(_ok(kalliope("billing", "calls", "--json", env=env)).stdout)
    assert [(c["number"], c["line"], c["cost"], c["source"]) for c in calls] == [
        ("0612345678", "my-trunk", None, "file")
    ]
