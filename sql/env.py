"""Alembic environment: the engine comes from kalliope-tel's own settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from kalliope_tel.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if not isinstance(engine, Engine):
        from kalliope_tel.config import load_settings
        from kalliope_tel.db.engine import make_engine

        engine = make_engine(load_settings().effective_database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
