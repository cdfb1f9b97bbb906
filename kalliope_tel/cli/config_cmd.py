from __future__ import annotations

import typer

from kalliope_tel.cli.context import STATE, print_json, print_table
from kalliope_tel.config import find_config_file, masked

app = typer.Typer(help="Effective settings.", no_args_is_help=True)


@app.command("show")
def show(as_json: bool = typer.Option(False, "--json")) -> None:
    """Print the effective settings, secrets masked."""
    values = masked(STATE.settings)
    if as_json:
        print_json(values)
        return
    source = find_config_file(STATE.config_file)
    print_table(
        f"settings (file: {source or 'none'}; environment: KALLIOPE_*)",
        ["key", "environment variable", "value"],
        [[k, f"KALLIOPE_{k.upper()}", v] for k, v in values.items()],
    )
