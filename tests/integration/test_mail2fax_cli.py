"""``kalliope-tel fax boxes`` against a real Dovecot, as an operator runs it:
add (password on standard input, never echoed), list, show, test (logs in,
counts, touches nothing), requests, update, remove; boxes stay inside their
PBX; users' PGP keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kalliope_tel.lab.dovecot import LabDovecot
from tests.conftest import kalliope
from tests.mail2fax_support import BOX, MARKS, Keys, dovecot, imap_folder, new_mailbox, pdf_bytes, request

pytestmark = [
    pytest.mark.commands,
    *MARKS,
    pytest.mark.timeout(300),
]


def _cli(url: str, data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return kalliope(*args, env={"KALLIOPE_DATABASE_URL": url, "KALLIOPE_DATA_DIR": str(data)}, stdin=stdin)


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


def _add(url: str, data: Path, lab: LabDovecot, password: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _cli(
        url,
        data,
        "fax",
        *extra,
        "boxes",
        "add",
        "requests",
        "--address",
        BOX,
        "--server",
        "127.0.0.1",
        "--port",
        str(lab.imaps_port),
        "--ca-file",
        str(lab.cert),
        "--processed-folder",
        "Processed",
        "--password-stdin",
        "--json",
        stdin=password + "\n",
    )


def test_boxes_from_the_command_line(fresh_db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _ok(_cli(fresh_db_url, data, "db", "upgrade"))
    with dovecot(tmp_path / "dovecot") as lab:
        password = new_mailbox(lab)
        added = _ok(_add(fresh_db_url, data, lab, password))
        assert password not in added.stdout + added.stderr
        assert json.loads(added.stdout)["password"] == "set"
        # A password is never an argument.
        help_text = _ok(_cli(fresh_db_url, data, "fax", "boxes", "add", "--help")).stdout
        assert "--password-stdin" in help_text and "--password " not in help_text
        again = _add(fresh_db_url, data, lab, password)
        assert again.returncode == 1 and "exists already" in again.stderr
        shown = json.loads(_ok(_cli(fresh_db_url, data, "fax", "boxes", "show", "requests", "--json")).stdout)
        assert (shown["protocol"], shown["port"], shown["ssl"], shown["username"]) == (
            "imap",
            lab.imaps_port,
            True,
            BOX,
        )
        assert password not in json.dumps(shown)
        # test: logs in, counts, changes nothing.
        lab.deliver(BOX, request("511", [("a.pdf", pdf_bytes(1))]).as_bytes())
        tested = json.loads(_ok(_cli(fresh_db_url, data, "fax", "boxes", "test", "requests", "--json")).stdout)
        assert tested["ok"] and tested["messages"] == 1 and tested["oversized"] == 0
        assert len(imap_folder(lab, BOX, password)) == 1
        # A wrong password: the test fails with the server's reason, recorded for doctor.
        _ok(_cli(fresh_db_url, data, "fax", "boxes", "update", "requests", "--password-stdin", stdin="wrong\n"))
        failed = _cli(fresh_db_url, data, "fax", "boxes", "test", "requests")
        assert failed.returncode == 1 and "requests:" in failed.stderr and "wrong" not in failed.stderr
        listed = json.loads(_ok(_cli(fresh_db_url, data, "fax", "boxes", "list", "--json")).stdout)
        assert listed[0]["last_error"] and listed[0]["instances"] == []
        doctor = _cli(fresh_db_url, data, "doctor", "--json")
        assert "box requests (default)" in doctor.stdout
        # POP3 on its port.
        _ok(_cli(fresh_db_url, data, "fax", "boxes", "update", "requests", "--password-stdin", stdin=password + "\n"))
        pop = [
            "fax", "boxes", "update", "requests", "--protocol", "pop3", "--port", str(lab.pop3s_port), "--json",
        ]  # fmt: skip
        _ok(_cli(fresh_db_url, data, *pop))
        tested = json.loads(_ok(_cli(fresh_db_url, data, "fax", "boxes", "test", "requests", "--json")).stdout)
        assert tested["ok"] and tested["found"].startswith("POP3") and tested["messages"] == 1
        assert len(imap_folder(lab, BOX, password)) == 1  # POP3 RSET: still there
    # Instances link to a box by name, inside the PBX; a linked box cannot go.
    _ok(
        _cli(
            fresh_db_url, data, "fax", "instances", "add", "office", "--selection", "700", "--mail2fax-box", "requests"
        )
    )
    refused = _cli(fresh_db_url, data, "fax", "boxes", "remove", "requests")
    assert refused.returncode == 1 and "used by fax instance(s) office" in refused.stderr
    nobox = _cli(fresh_db_url, data, "fax", "instances", "update", "office", "--mail2fax-box", "nosuch")
    assert nobox.returncode == 1 and "no Mail2Fax box 'nosuch'" in nobox.stderr
    # Another PBX sees none of it, and cannot link the first PBX's box.
    _ok(_cli(fresh_db_url, data, "pbx", "add", "acme", "--name", "Acme"))
    assert json.loads(_ok(_cli(fresh_db_url, data, "fax", "--pbx", "acme", "boxes", "list", "--json")).stdout) == []
    other = _cli(fresh_db_url, data, "fax", "--pbx", "acme", "boxes", "show", "requests")
    assert other.returncode == 1 and "no Mail2Fax box 'requests' in PBX 'acme'" in other.stderr
    _ok(_cli(fresh_db_url, data, "fax", "instances", "update", "office", "--mail2fax-box", ""))
    _ok(_cli(fresh_db_url, data, "fax", "boxes", "remove", "requests"))
    assert json.loads(_ok(_cli(fresh_db_url, data, "fax", "boxes", "list", "--json")).stdout) == []


def test_pgp_keys_are_checked(fresh_db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _ok(_cli(fresh_db_url, data, "db", "upgrade"))
    keys = Keys.make(tmp_path / "gpg", "Alice <alice@example.com>")
    public, secret = tmp_path / "alice.asc", tmp_path / "alice-secret.asc"
    public.write_text(keys.public())
    secret.write_text(keys.secret())
    _ok(_cli(fresh_db_url, data, "users", "add", "alice", "--email", "alice@example.com"))
    done = json.loads(_ok(_cli(fresh_db_url, data, "users", "pgp-key", "alice", str(public), "--json")).stdout)
    assert done["pgp_fingerprint"] == keys.fingerprint
    junk = tmp_path / "junk.asc"
    junk.write_text("not a key")
    bad = _cli(fresh_db_url, data, "users", "pgp-key", "alice", str(junk))
    assert bad.returncode == 1 and "no OpenPGP key" in bad.stderr
    # A box needs a secret key: a public one is refused with the reason.
    args = ["fax", "boxes", "add", "b", "--address", "b@office.example", "--server", "127.0.0.1", "--password-stdin"]
    refused = _cli(fresh_db_url, data, *args, "--pgp-key", str(public), stdin="pw\n")
    assert refused.returncode == 1 and "needs its secret key" in refused.stderr
    added = _cli(fresh_db_url, data, *args, "--pgp-key", str(secret), "--json", stdin="pw\n")
    assert json.loads(_ok(added).stdout)["pgp_fingerprint"] == keys.fingerprint
    assert "PRIVATE KEY" not in added.stdout
