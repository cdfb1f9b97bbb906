from __future__ import annotations

import typer

from kalliope_tel.cli.context import STATE, console, print_json
from kalliope_tel.config import mask_url_password

app = typer.Typer(help="Database migrations.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Machine-readable output.")


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head"), as_json: bool = JSON) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from kalliope_tel.db import migrate

    engine = STATE.container.engine
    migrate.upgrade(engine, revision)
    url = mask_url_password(STATE.settings.effective_database_url)
    if as_json:
        print_json({"database": url, "revision": migrate.current_revision(engine)})
        return
    console.print(
        f"database {mask_url_password(STATE.settings.effective_database_url)} "
        f"at revision {migrate.current_revision(engine)}",
        highlight=False,
    )


@app.command("check")
def check(as_json: bool = JSON) -> None:
    """Fail when the database is behind or models and migrations differ."""
    from kalliope_tel.db import migrate

    engine = STATE.container.engine
    migrate.check(engine)
    if as_json:
        print_json({"revision": migrate.current_revision(engine), "models_match": True})
        return
    console.print(f"database at head ({migrate.current_revision(engine)}); models match migrations")


@app.command("current")
def current(as_json: bool = JSON) -> None:
    """Print the database's revision."""
    from kalliope_tel.db import migrate

    revision = migrate.current_revision(STATE.container.engine)
    if as_json:
        print_json({"revision": revision})
    else:
        console.print(revision or "none")
