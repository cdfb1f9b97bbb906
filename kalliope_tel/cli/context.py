"""What every command shares: settings (loaded once), the container, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kalliope_tel.config import Settings, load_settings
from kalliope_tel.container import Container
from kalliope_tel.errors import KalliopeError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from kalliope_tel.tenancy.models import Pbx

# Markup off: guest names, notes and room names are printed as they are
# ("Mario [/] Rossi" crashed 'rooms list'); colour is asked for explicitly.
console = Console(soft_wrap=True, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)


class CliState:
    def __init__(self) -> None:
        self.config_file: Path | None = None
        self.pbx_slug: str | None = None
        self._settings: Settings | None = None
        self._container: Container | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
            # One-shot commands print their own results; only 'serve' logs at info.
            from kalliope_tel.logging import configure_logging

            level = self._settings.log_level
            configure_logging("warning" if level == "info" else level, self._settings.log_format)
        return self._settings

    @property
    def container(self) -> Container:
        if self._container is None:
            self._container = Container(self.settings)
        return self._container


STATE = CliState()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def done(message: str, data: Any, as_json: bool) -> None:
    """What a command that changed something reports: a line, or its JSON."""
    if as_json:
        print_json(data)
    else:
        console.print(message, highlight=False)


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


T = TypeVar("T")


def in_transaction(work: Callable[[Session], T]) -> T:
    """``work`` in one transaction of the store (commands not tied to one PBX)."""
    from kalliope_tel.db.engine import transaction

    with transaction(STATE.container.sessions) as session:
        return work(session)


def run_in_pbx(work: Callable[[Session, Pbx], T]) -> T:
    """One command's work in one transaction, for the PBX chosen by --pbx.

    It takes SQLite's write lock up front (``transaction``): a command reads then
    writes while serve writes too, and a deferred transaction would fail at
    its first write ("database is locked") if serve committed in between.
    A command is one short transaction; waiting its turn costs nothing."""
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.tenancy.services import get_pbx

    with transaction(STATE.container.sessions) as session:
        return work(session, get_pbx(session, STATE.pbx_slug))


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def read_secrets(labels: list[str], *, from_stdin: bool) -> list[str]:
    """Secrets never come from argv (visible in ps and shell history): one line
    each on standard input with ``--password-stdin``, or typed at a hidden prompt."""
    if from_stdin:
        lines = sys.stdin.read().splitlines()
        if len(lines) < len(labels) or not all(lines[: len(labels)]):
            raise KalliopeError(f"expected {len(labels)} line(s) on standard input: {', '.join(labels)}")
        return lines[: len(labels)]
    if not sys.stdin.isatty():
        raise KalliopeError("no terminal to ask for the password on: use --password-stdin")
    return [typer.prompt(label, hide_input=True, confirmation_prompt=True) for label in labels]


class Steps:
    """Progress of long CLI work, on standard error only (``--json`` keeps
    standard output for its one document): rich's live line on a terminal,
    plain lines with the elapsed time otherwise (a pipe, a log, CI), at most
    one a second unless ``force``, so a ten-minute search shows it is alive."""

    def __init__(self, title: str) -> None:
        import time

        self.title = title
        self._clock = time.monotonic
        self._started = self._clock()
        self._last = 0.0
        self._status: Any = None

    def __enter__(self) -> Steps:
        if err_console.is_terminal:
            self._status = err_console.status(self.title)
            self._status.__enter__()
        else:
            self.say("started", force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
        else:
            self.say("done" if exc[0] is None else "stopped", force=True)

    def say(self, what: str, *, force: bool = False) -> None:
        now = self._clock()
        if self._status is not None:
            self._status.update(f"{self.title}: {what}")
        elif force or now - self._last >= 1.0:
            err_console.print(f"{self.title}: {what} ({now - self._started:.1f} s)", highlight=False)
        self._last = now
