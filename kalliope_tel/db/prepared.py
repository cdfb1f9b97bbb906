"""Core statements compiled once, run on the driver's own connection.

For the per-call read paths (FastAGI handlers through ``HotReader``), where
SQLAlchemy's execution layer was the largest part of a one-row read:
``conn.execute(select(...))`` cost 25-30 us on SQLite per call (cache-key
generation, compiled-cache lookup, execution context, result wrapper), the
same SQL through sqlite3 4-6 us. The statement is still written with
SQLAlchemy and compiled by it, once per dialect, so the SQL stays portable
and checked; only the execution skips the layers.

Limits, on purpose: plain parameters and results (str, int, None); types
with bind or result processors (dates, enums, JSON) go through
``Connection.execute``. Compiling refuses a statement that has them, so a
wrong use fails at the first call, in tests, not with a wrong value.
Driver errors are re-raised as SQLAlchemy's ``DBAPIError`` with the
disconnect flag set, and the connection invalidated, as ``execute`` would:
``HotReader``'s retry on a new connection works the same for both paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Params = Callable[[Mapping[str, Any]], Any]


class Prepared:
    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: dict[str, tuple[str, Params]] = {}

    def _compiled(self, dialect: Dialect) -> tuple[str, Params]:
        found = self._by_dialect.get(dialect.name)
        if found is not None:
            return found
        # Literal IN lists rendered now: the statement is fixed, not expanded per call.
        compiled = self.statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        assert isinstance(compiled, SQLCompiler)
        if compiled._bind_processors or _has_result_processors(compiled, dialect):
            raise TypeError("Prepared takes plain parameters and results only; use Connection.execute")
        defaults = {key: value for key, value in compiled.params.items() if value is not None}
        if compiled.positiontup is not None:
            names = tuple(compiled.positiontup)

            def positional(params: Mapping[str, Any]) -> Any:
                merged = {**defaults, **params} if defaults else params
                return tuple(merged[name] for name in names)

            build: Params = positional
        else:
            keys = tuple(compiled.params)

            def named(params: Mapping[str, Any]) -> Any:
                merged = {**defaults, **params} if defaults else params
                return {key: merged[key] for key in keys}  # a missing one: KeyError, as positional

            build = named
        found = (str(compiled), build)
        self._by_dialect[dialect.name] = found
        return found

    def rows(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        dialect = conn.dialect
        sql, build = self._compiled(dialect)
        raw = conn.connection.driver_connection
        values = build(params or {})
        try:
            cursor = raw.execute(sql, values)  # type: ignore[union-attr]
            try:
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            gone = dialect.is_disconnect(exc, raw, None)
            if gone:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                sql, values, exc, dialect.loaded_dbapi.Error, connection_invalidated=gone, dialect=dialect
            ) from exc

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the only row, None without a row."""
        found = self.rows(conn, params)
        if len(found) > 1:
            raise LookupError(f"{len(found)} rows where at most one was expected")
        return found[0][0] if found else None


def _has_result_processors(compiled: SQLCompiler, dialect: Dialect) -> bool:
    for column in compiled._result_columns:
        type_ = column[3]
        if type_.dialect_impl(dialect).result_processor(dialect, None) is not None:
            return True
    return False
