"""Reads on the per-call path (FastAGI handlers) without pool overhead.

Measured on the target machines: an SQLAlchemy pool checkout with BEGIN and
ROLLBACK around a one-row SELECT costs 115 us on SQLite and 883 us on
PostgreSQL; the same SELECT on a long-lived AUTOCOMMIT connection costs 30 us
and 254 us. Each call is one statement, so autocommit loses nothing.

SQLite reads run in the event loop (a local file read of tens of
microseconds is cheaper than a thread hand-off); PostgreSQL reads run on a
small dedicated thread pool so a network round trip never stalls other calls.
A connection that fails is dropped and the read retried once on a new one.

Short writes on the per-call path (the cleaning code) run in one transaction
on a long-lived connection of a worker thread (``write``); a failed write is
not retried (it may have committed), the handler reports it.
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
        # SQLite has one writer at a time anyway: one thread, one connection.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="hot-db-write") if self._in_loop else None

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

    def _write_connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "wconn", None)
        if conn is None or conn.closed:
            conn = self._local.wconn = self.engine.connect()
        return conn

    def _transact(self, fn: Callable[[Connection], T]) -> T:
        conn = self._write_connection()
        try:
            with conn.begin():
                return fn(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            self._local.wconn = None  # never retried: the first try may have committed
            raise

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` in one transaction on a long-lived connection, on a worker
        thread for both databases: a commit waits for the disk (SQLite's
        fsync), which must never stall the event loop."""
        executor = self._writer or self._executor
        return await asyncio.get_running_loop().run_in_executor(executor, self._transact, fn)

    def close(self) -> None:
        for name in ("conn", "wconn"):
            conn = getattr(self._local, name, None)
            if conn is not None:
                conn.close()
        for executor in (self._executor, self._writer):
            if executor is not None:
                executor.shutdown(wait=False)
