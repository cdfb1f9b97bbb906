"""Alembic environment: the engine comes from kalliope-tel's own settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

from kalliope_tel.db.models import Base

config = context.config
target_metadata = Base.metadata


def _pragma(connection: Connection, pragma: str) -> None:
    """A SQLite pragma on the driver's connection, outside any transaction
    (SQLAlchemy's own execute would begin one, where it is ignored)."""
    if connection.in_transaction():
        connection.commit()
    connection.connection.dbapi_connection.execute(f"PRAGMA {pragma}")  # type: ignore[union-attr]


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if not isinstance(engine, Engine):
        from kalliope_tel.config import load_settings
        from kalliope_tel.db.engine import make_engine

        engine = make_engine(load_settings().effective_database_url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table (copy, DROP, rename). With foreign
            # keys on, the DROP deleted every row that referenced the table
            # through ON DELETE CASCADE: rebuilding 'pbx' emptied the hotel.
            # The pragma only takes effect outside a transaction; the keys are
            # checked once the migrations are done, and switched back on.
            _pragma(connection, "foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=sqlite,
        )
        try:
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
            connection.commit()
        finally:
            if sqlite:
                _pragma(connection, "foreign_keys=ON")


run_migrations_online()
