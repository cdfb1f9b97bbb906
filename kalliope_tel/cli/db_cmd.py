from __future__ import annotations

import typer

from kalliope_tel.cli.context import STATE, console
from kalliope_tel.config import mask_url_password

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from kalliope_tel.db import migrate

    engine = STATE.container.engine
    migrate.upgrade(engine, revision)
    console.print(
        f"database {mask_url_password(STATE.settings.effective_database_url)} "
        f"at revision {migrate.current_revision(engine)}",
        highlight=False,
    )


@app.command("check")
def check() -> None:
    """Fail when the database is behind or models and migrations differ."""
    from kalliope_tel.db import migrate

    engine = STATE.container.engine
    migrate.check(engine)
    console.print(f"database at head ({migrate.current_revision(engine)}); models match migrations")


@app.command("current")
def current() -> None:
    """Print the database's revision."""
    from kalliope_tel.db import migrate

    console.print(migrate.current_revision(STATE.container.engine) or "none")
