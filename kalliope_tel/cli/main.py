"""Entry point: ``kalliope-tel [--config FILE] COMMAND ...``.

Errors meant for the operator are printed as one line with a non-zero exit,
never as a traceback (``KALLIOPE_DEBUG=1`` shows it for bug reports).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import typer
from rich.markup import escape

from kalliope_tel.cli import asterisk_cmd, bench_cmd, config_cmd, db_cmd, lab_cmd, omnia_cmd, pbx_cmd, users_cmd
from kalliope_tel.cli.context import STATE, console, err_console, print_json, print_table

app = typer.Typer(
    name="kalliope-tel",
    help="KalliopePBX add-on modules for Asterisk: hotel, wake-up calls, fax, PBXs (tenants) and their users.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.add_typer(lab_cmd.app, name="lab")
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(asterisk_cmd.app, name="asterisk")
app.add_typer(pbx_cmd.app, name="pbx")
app.add_typer(users_cmd.app, name="users")
app.add_typer(omnia_cmd.app, name="omnia")


def _mount_features() -> None:
    """Each feature's command group and benchmarks, from its declaration.

    All features' commands are mounted whatever the ``features`` setting
    (reading settings here would make every command pay for it, and an
    operator may prepare a feature before enabling it in serve).
    """
    import importlib

    from kalliope_tel.features import ALL_FEATURES, load_feature

    for name in ALL_FEATURES:
        feature = load_feature(name)
        if feature.cli is not None:
            group, target = feature.cli
            module, _, attr = target.partition(":")
            app.add_typer(getattr(importlib.import_module(module), attr), name=group)
        for bench_name, target in feature.benches.items():
            module, _, attr = target.partition(":")
            bench_cmd.app.command(bench_name)(getattr(importlib.import_module(module), attr))


_mount_features()


@app.callback()
def main(
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML settings file.", envvar="KALLIOPE_CONFIG"),
) -> None:
    STATE.config_file = config
    # Everything this process creates (store, faxes, reports) is owner-only.
    from kalliope_tel.files import private_umask

    private_umask()
    # Logs always go to standard error, also for commands that never load the
    # settings (structlog's default is standard output, which mixed spandsp's
    # warnings into 'bench fax --json').
    from kalliope_tel.logging import configure_logging

    configure_logging("warning", "console")


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Check the database, Asterisk, FastAGI, every feature and every serve node; say how to fix what fails."""
    from kalliope_tel.doctor import run_checks

    checks = run_checks(STATE.container)
    if as_json:
        print_json([c.__dict__ for c in checks])
    else:
        for c in checks:
            mark = "[green]ok[/green]  " if c.ok else "[red]FAIL[/red]"
            console.print(f"{mark} {c.name:<9} ", highlight=False, end="", markup=True)
            console.print(c.detail, highlight=False, markup=False)
            if c.fix:
                console.print(f"          fix: {c.fix}", highlight=False, markup=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command()
def serve() -> None:
    """Run FastAGI, ARI applications and AMI until SIGTERM."""
    from kalliope_tel.logging import configure_logging
    from kalliope_tel.serve import serve as run_serve

    container = STATE.container
    configure_logging(container.settings.log_level, container.settings.log_format)
    ep = container.endpoints

    def ready() -> None:
        err_console.print(
            f"kalliope-tel serving: FastAGI {ep.agi_host}:{ep.agi_port}, ARI {ep.ari_url}, "
            f"Asterisk from {ep.source}. Ctrl-C to stop.",
            highlight=False,
        )

    asyncio.run(run_serve(container, ready=ready))


@app.command()
def version() -> None:
    """Print the version."""
    from kalliope_tel import __version__

    console.print(f"kalliope-tel {__version__}")


# Errors whose message is for the operator, by module prefix: checked after
# the fact so the CLI never imports SQLAlchemy or the engines just to catch them.
OPERATOR_ERROR_MODULES = ("kalliope_tel.", "sqlalchemy.", "psycopg")


def is_operator_error(exc: BaseException) -> bool:
    from kalliope_tel.errors import KalliopeError

    if isinstance(exc, KalliopeError | OSError):
        return True
    return any(cls.__module__.startswith(OPERATOR_ERROR_MODULES) for cls in type(exc).__mro__)


def run() -> None:
    try:
        app()
    except Exception as exc:
        if os.environ.get("KALLIOPE_DEBUG") or not is_operator_error(exc):
            raise
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        text = escape(message[0] if message else type(exc).__name__)
        err_console.print(f"[red]error:[/red] {text}", highlight=False, markup=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "print_table", "run"]
