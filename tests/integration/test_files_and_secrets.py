"""Files and secrets: the store and generated files are not world-readable,
SIP passwords never travel in argv, HA1 is never shown, and the sample
manager.conf grants production only what it uses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from kalliope_tel.asterisk.outbound_conf import outbound_password
from kalliope_tel.config import Settings
from kalliope_tel.resources import asterisk_conf_dir
from tests.conftest import kalliope

pytestmark = pytest.mark.integration


def cli(*args: str, db: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return kalliope(*args, env={"KALLIOPE_DATABASE_URL": f"sqlite:///{db}"}, stdin=stdin)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_generated_files_and_sip_secrets(tmp_path: Path) -> None:
    db = tmp_path / "store" / "kt.sqlite3"
    os.umask(0o022)  # an ordinary shell's umask: kalliope-tel must not rely on it
    assert cli("db", "upgrade", db=db).returncode == 0
    assert mode(db) == 0o600 and mode(db.parent) == 0o700

    assert cli("hotel", "classes", "init", "--trunk-context", "kt-lab-trunk", db=db).returncode == 0
    assert cli("hotel", "templates", "add", "std", db=db).returncode == 0
    assert cli("hotel", "rooms", "add", "101", "--template", "std", db=db).returncode == 0

    # No --password option any more: a secret in argv is visible in ps.
    refused = cli("hotel", "accounts", "add", "201", "--password", "abcdefghijkl", db=db)
    assert refused.returncode == 2 and "No such option" in refused.stderr
    typed = cli("hotel", "accounts", "add", "201", "--password-stdin", "--json", db=db, stdin="correct-horse-42\n")
    assert typed.returncode == 0, typed.stderr
    assert json.loads(typed.stdout) == {"username": "201", "login": "201", "password": None}
    generated = json.loads(cli("hotel", "accounts", "add", "202", "--json", db=db).stdout)
    assert len(generated["password"]) >= 16
    no_tty = cli("hotel", "accounts", "add", "203", "--set-password", db=db)
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr

    listed = cli("hotel", "accounts", "list", "--json", db=db).stdout
    assert "ha1" not in listed and "correct-horse-42" not in listed and generated["password"] not in listed

    # An account has an endpoint once it rings on an extension (here room 102).
    assert (
        cli(
            "hotel", "rooms", "add", "102", "--template", "std", "--account", "201", "--account", "202", db=db
        ).returncode
        == 0
    )
    out = tmp_path / "render"
    assert cli("asterisk", "render", "-o", str(out), db=db).returncode == 0
    pjsip = out / "kalliope" / "pjsip_default.conf"
    assert mode(pjsip) == 0o640 and mode(pjsip.parent) == 0o750
    text = pjsip.read_text()
    assert "md5_cred = " in text and "correct-horse-42" not in text and generated["password"] not in text


def test_outbound_websocket_config_is_rendered_private_and_its_password_stays_out_of_argv_and_output(
    tmp_path: Path,
) -> None:
    db = tmp_path / "kt.sqlite3"
    secret = "ws-" + os.urandom(12).hex()
    env = {
        "KALLIOPE_DATABASE_URL": f"sqlite:///{db}",
        "KALLIOPE_ARI_OUTBOUND_BIND": "127.0.0.1:8765",
        "KALLIOPE_ARI_OUTBOUND_URI": "ws://lb.example.net:8765/ari",
        "KALLIOPE_ARI_OUTBOUND_PASSWORD": secret,
    }
    assert kalliope("db", "upgrade", env=env).returncode == 0
    out = tmp_path / "render"
    done = kalliope("asterisk", "render", "-o", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    client = out / "kalliope" / "websocket_client_outbound.conf"
    ari = out / "kalliope" / "ari_outbound.conf"
    assert mode(client) == 0o640 and mode(ari) == 0o640
    # This Asterisk's own password (derived), never the master one.
    derived = outbound_password(Settings(ari_outbound_bind="127.0.0.1:8765", ari_outbound_password=secret))  # type: ignore[arg-type]
    assert f"password = {derived}\n" in client.read_text() and secret not in client.read_text()
    assert "uri = ws://lb.example.net:8765/ari\n" in client.read_text()
    assert "apps = kalliope\n" in ari.read_text()
    shown = kalliope("config", "show", env=env)
    assert secret not in shown.stdout and "ari_outbound_password" in shown.stdout
    # Back to inbound mode: the same command writes the files without a section.
    inbound = {k: v for k, v in env.items() if not k.startswith("KALLIOPE_ARI_OUTBOUND")}
    assert kalliope("asterisk", "render", "-o", str(out), env=inbound).returncode == 0
    assert "[" not in client.read_text() and secret not in client.read_text()
    # The samples pull the generated files in.
    assert '#tryinclude "kalliope/ari_outbound.conf"' in (asterisk_conf_dir() / "ari.conf").read_text()
    sample = (asterisk_conf_dir() / "websocket_client.conf").read_text()
    assert '#tryinclude "kalliope/websocket_client_outbound.conf"' in sample


def test_sample_manager_conf_grants_only_what_is_used() -> None:
    import configparser

    conf = configparser.ConfigParser(strict=False, comment_prefixes=(";",), inline_comment_prefixes=(";",))
    conf.read_string((asterisk_conf_dir() / "manager.conf").read_text())
    user = conf["kalliope"]
    # system: Asterisk's state; cdr: billing's Cdr events. No call data beyond
    # the CDRs, no originate. Write: command (reloads), system (realtime
    # accounts: cache expiry and the dialplan changed in place).
    assert user["read"] == "system,cdr" and user["write"] == "command,system"
    assert user["permit"].startswith("127.0.0.1") and user["deny"].startswith("0.0.0.0")


def test_a_second_engine_on_the_same_sqlite_file_leaves_the_first_one_seeing_commits(tmp_path: Path) -> None:
    """Making an engine keeps the store's file owner-only without opening it
    again: closing a descriptor of the file dropped this process's SQLite
    locks, and the first engine then read an old snapshot for good (the live
    panels missed every change made by the CLI)."""
    import sys

    from sqlalchemy import text

    from kalliope_tel.db.engine import make_engine

    url = f"sqlite:///{tmp_path / 'kt.sqlite3'}"
    first = make_engine(url)
    with first.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    write = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('INSERT INTO t VALUES (1)'); c.commit()"

    def count() -> int:
        with first.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())

    assert count() == 0
    for n in (1, 2):
        make_engine(url).dispose()  # e.g. a command run in-process, a test's helper
        subprocess.run([sys.executable, "-c", write, str(tmp_path / "kt.sqlite3")], check=True)
        assert count() == n
    first.dispose()
