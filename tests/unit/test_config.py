from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kalliope_tel.config import SECRET_MASK, ConfigError, load_settings, masked
from tests.conftest import kalliope

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("KALLIOPE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir("/")


def test_toml_tables_and_environment_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "kt.toml"
    cfg.write_text(
        'agi_bind = "127.0.0.1:5000"\n'
        '[database]\nurl = "sqlite:////tmp/a.sqlite3"\n'
        '[ari]\nurl = "http://10.0.0.1:8088/ari"\nusername = "kt"\npassword = "from-file"\n'
    )
    monkeypatch.setenv("KALLIOPE_ARI_PASSWORD", "from-env")
    settings = load_settings(cfg)
    assert settings.database_url == "sqlite:////tmp/a.sqlite3"
    assert settings.ari_url == "http://10.0.0.1:8088/ari"
    assert settings.ari_username == "kt"
    assert settings.ari_password.get_secret_value() == "from-env"  # environment wins
    assert settings.agi_bind == "127.0.0.1:5000"


def test_default_database_is_sqlite_in_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KALLIOPE_DATA_DIR", str(tmp_path))
    assert load_settings().effective_database_url == f"sqlite:///{tmp_path}/kalliope-tel.sqlite3"


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("KALLIOPE_DATABASE_URL", "mysql://x@y/z", "database_url (KALLIOPE_DATABASE_URL)"),
        ("KALLIOPE_AGI_BIND", "nohost", "agi_bind (KALLIOPE_AGI_BIND)"),
        ("KALLIOPE_AMI_URL", "http://x", "ami_url (KALLIOPE_AMI_URL)"),
        ("KALLIOPE_ARI_URL", "http://u:secret@h/ari", "ari_url (KALLIOPE_ARI_URL)"),
        ("KALLIOPE_LOG_LEVEL", "loud", "log_level (KALLIOPE_LOG_LEVEL)"),
    ],
)
def test_bad_value_names_the_key(monkeypatch: pytest.MonkeyPatch, key: str, value: str, named: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert named in str(err.value)


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "kt.toml"
    cfg.write_text('[database]\nulr = "sqlite:///x"\n')
    with pytest.raises(ConfigError, match=r"unknown setting.*database_ulr"):
        load_settings(cfg)


def test_masked_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALLIOPE_ARI_PASSWORD", "ari-s3cret")
    monkeypatch.setenv("KALLIOPE_AMI_PASSWORD", "ami-s3cret")
    monkeypatch.setenv("KALLIOPE_DATABASE_URL", "postgresql://kt:db-s3cret@127.0.0.1/kt")
    shown = masked(load_settings())
    text = repr(shown)
    assert "s3cret" not in text
    assert shown["ari_password"] == SECRET_MASK
    assert shown["database_url"] == f"postgresql://kt:{SECRET_MASK}@127.0.0.1/kt"


def test_cli_config_show_masks_and_bad_value_is_one_line(tmp_path: Path) -> None:
    ok = kalliope("config", "show", "--json", env={"KALLIOPE_ARI_PASSWORD": "hunter2-xyz"})
    assert ok.returncode == 0, ok.stderr
    assert "hunter2-xyz" not in ok.stdout
    assert '"ari_password": "********"' in ok.stdout

    bad = kalliope("config", "show", env={"KALLIOPE_AGI_BIND": "oops"})
    assert bad.returncode == 1
    assert "agi_bind (KALLIOPE_AGI_BIND)" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_every_command_that_can_change_something_accepts_json() -> None:
    """Scripts and panels drive the CLI: each command answers in JSON on request."""
    import typer.main

    from kalliope_tel.cli.main import app

    root = typer.main.get_command(app)
    # Long-running or informational only, or a file's text (CSV) as the output: no result to print as JSON.
    exempt = {"serve", "version", "omnia accounts export", "omnia extensions export", "omnia numbers export"}

    def walk(command: Any, path: str) -> list[str]:
        subcommands = getattr(command, "commands", None)  # a group (typer vendors click)
        if subcommands is not None:
            return [p for name, sub in subcommands.items() for p in walk(sub, f"{path} {name}".strip())]
        return [path]

    missing = []
    for path in walk(root, ""):
        if path in exempt:
            continue
        command = root
        for part in path.split():
            command = command.commands[part]
        if not any("--json" in getattr(param, "opts", []) for param in command.params):
            missing.append(path)
    assert missing == []
