"""Supervised background tasks for ``serve``: a crashed task comes back.

Each task is a factory of a coroutine that should run until cancelled. When
it returns or raises, the supervisor logs it, counts it, waits (exponential
backoff with jitter, from ``min_backoff`` up to ``max_backoff``; reset after
the task has run ``healthy_after`` seconds) and starts it again. Exceptions
listed as *fatal* (a wrong ARI or AMI password: retrying cannot help) stop
the whole supervisor and reach ``serve``, which exits with the reason.

The state of every task (running / waiting / stopped, restarts, last error)
is what ``doctor`` shows for a node (see ``kalliope_tel.nodes``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from kalliope_tel.backoff import Backoff, Retry
from kalliope_tel.db.engine import store_busy

log = structlog.get_logger(__name__)

TaskFactory = Callable[[], Awaitable[None]]


@dataclass
class TaskState:
    name: str
    factory: TaskFactory
    state: str = "starting"  # running | waiting | stopped
    restarts: int = 0
    last_error: str = ""
    started: float = 0.0
    stopping: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}


class Supervisor:
    def __init__(
        self,
        *,
        fatal: tuple[type[BaseException], ...] = (),
        min_backoff: float = 0.25,
        max_backoff: float = 4.0,
        healthy_after: float = 60.0,
    ) -> None:
        self.fatal = fatal
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        self.tasks: dict[str, TaskState] = {}
        self._failed: asyncio.Future[BaseException] | None = None
        self._stopping = False

    def add(self, name: str, factory: TaskFactory) -> None:
        if name in self.tasks:
            raise ValueError(f"task {name!r} is supervised already")
        state = TaskState(name, factory)
        self.tasks[name] = state
        state.task = asyncio.create_task(self._keep(state), name=name)

    def status(self) -> dict[str, dict[str, Any]]:
        return {name: t.as_dict() for name, t in sorted(self.tasks.items())}

    async def wait_fatal(self) -> BaseException:
        """Resolves with the first fatal error of any task."""
        if self._failed is None:
            self._failed = asyncio.get_running_loop().create_future()
        return await self._failed

    def _fail(self, exc: BaseException) -> None:
        if self._failed is None:
            self._failed = asyncio.get_running_loop().create_future()
        if not self._failed.done():
            self._failed.set_result(exc)

    async def _keep(self, t: TaskState) -> None:
        retry = Retry(Backoff(self.min_backoff, self.max_backoff, jitter=0.2))
        while not (self._stopping or t.stopping):
            t.state, t.started = "running", time.monotonic()
            try:
                await t.factory()
                reason = "returned"
            except asyncio.CancelledError:
                raise
            except self.fatal as exc:
                t.state, t.last_error = "stopped", f"{type(exc).__name__}: {exc}"
                log.error("supervisor.task_fatal", task=t.name, error=t.last_error)
                self._fail(exc)
                return
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if store_busy(exc):  # another process held SQLite's lock past busy_timeout: wait, no traceback
                    log.warning("supervisor.task_waiting_for_store", task=t.name, reason=str(exc.args[0])[:200])
                else:
                    log.exception("supervisor.task_crashed", task=t.name)
            if self._stopping or t.stopping:
                break  # a factory that lost its cancel and returned: not a crash
            if time.monotonic() - t.started >= self.healthy_after:
                retry.reset()
            t.restarts += 1
            t.state, t.last_error = "waiting", reason
            delay = retry.next()
            log.warning(
                "supervisor.task_restarting", task=t.name, reason=reason, delay=round(delay, 2), restarts=t.restarts
            )
            await asyncio.sleep(delay)
        t.state = "stopped"

    async def stop(self, names: list[str] | None = None) -> None:
        """Cancel the named tasks (all by default) and wait for them.

        A coroutine can lose a cancel (on Python 3.11, ``asyncio.wait_for``
        returns its inner result when both land in one loop turn), so each
        task is cancelled again until it has ended. Awaiting each task under
        ``suppress(CancelledError)`` also swallowed a cancel of ``stop``
        itself; ``asyncio.wait`` lets that one through."""
        chosen = [t for n, t in self.tasks.items() if names is None or n in names]
        if names is None:
            self._stopping = True
        for t in chosen:
            t.stopping = True
        pending = {t.task for t in chosen if t.task is not None and not t.task.done()}
        rounds = 0
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
            rounds += 1
            if pending:
                log.warning(
                    "supervisor.task_not_stopping", tasks=sorted(task.get_name() for task in pending), rounds=rounds
                )
        for t in chosen:
            if t.task is not None and not t.task.cancelled():
                t.task.exception()  # retrieved: asyncio would log it as never retrieved
            t.state = "stopped"
