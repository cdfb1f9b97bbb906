"""Drive calls on the lab Asterisk and collect what happened, as data."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from kalliope_tel.asterisk.ami.client import AmiClient
from kalliope_tel.asterisk.apply import reload, write_files
from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.asterisk.ari.models import ChannelDestroyed, ChannelVarset, Event
from kalliope_tel.asterisk.ari.runtime import AriRuntime
from kalliope_tel.container import Container
from kalliope_tel.db.engine import transaction
from kalliope_tel.dialplan.generator import LAB_DEVICE, render
from kalliope_tel.lab.instance import LabInstance, LabState
from kalliope_tel.tenancy.services import list_pbxs


@contextlib.asynccontextmanager
async def ari_runtime(state: LabState, app: str | None = None) -> AsyncIterator[AriRuntime]:
    """A connected ARI client and runtime for ``app`` (default: a fresh name), closed afterwards."""
    app = app or f"kt-test-{uuid.uuid4().hex[:8]}"
    client = AriClient(state.ari_url, state.ari_username, state.ari_password, apps=[app])
    runtime = AriRuntime(client)
    runner = asyncio.create_task(runtime.run())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        yield runtime
    finally:
        await client.aclose()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await runtime.aclose()


@dataclass
class CallTrace:
    near: str
    far: str
    events: list[Event] = field(default_factory=list)

    def variables(self, leg: str | None = None) -> dict[str, str]:
        """Last value of every variable set on the far (dialplan) half."""
        leg = leg or self.far
        return {e.variable: e.value for e in self.events if isinstance(e, ChannelVarset) and e.channel_id == leg}

    def types(self, leg: str | None = None) -> list[str]:
        leg = leg or self.near
        return [e.type for e in self.events if e.channel_id == leg]


async def run_local_call(
    runtime: AriRuntime,
    exten: str,
    context: str,
    *,
    timeout: float = 30,
    variables: dict[str, str] | None = None,
) -> CallTrace:
    """Originate ``Local/exten@context`` and follow both halves to the end."""
    token = uuid.uuid4().hex[:10]
    trace = CallTrace(f"kt-{token}", f"kt-{token}-far")
    app = runtime.client.apps[0]
    async with runtime.listen() as events:
        await runtime.client.originate(
            f"Local/{exten}@{context}",
            app=app,
            app_args=["trace"],
            timeout=int(timeout),
            channel_id=trace.near,
            other_channel_id=trace.far,
            variables=variables,
        )
        destroyed: set[str] = set()
        async with asyncio.timeout(timeout + 10):
            while destroyed != {trace.near, trace.far}:
                event = await events.get()
                if event.channel_id in (trace.near, trace.far):
                    trace.events.append(event)
                    if isinstance(event, ChannelDestroyed):
                        destroyed.add(event.channel.id)
    return trace


async def apply_lab_config(container: Container, lab: LabInstance) -> list[str]:
    """Render the generated configuration for the lab's phones and load it,
    through the production write and AMI reload path."""
    files: dict[str, str] = {}
    with transaction(container.sessions) as session:
        for pbx in list_pbxs(session):
            files.update(render(session, pbx, LAB_DEVICE).files)
    changed = write_files(lab.dir / "etc", files)
    state = lab.read_state()
    assert state is not None
    ami = AmiClient("127.0.0.1", state.ami_port, state.ami_username, state.ami_password)
    await ami.connect()
    try:
        await reload(ami, changed)
    finally:
        await ami.aclose()
    return changed


def serve_env(state: LabState, database_url: str, **extra: str) -> dict[str, str]:
    """Environment for a 'kalliope-tel serve' process against a lab instance."""
    import os

    from tests.conftest import LAB_ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("KALLIOPE_")}
    env.update(
        KALLIOPE_LAB_ROOT=str(LAB_ROOT),
        KALLIOPE_LAB_NAME=state.name,
        KALLIOPE_DATABASE_URL=database_url,
        KALLIOPE_LOG_FORMAT="json",
        # Any free port: several nodes and test workers run side by side.
        KALLIOPE_HTTP_BIND="127.0.0.1:0",
        # A killed node counts as gone after 20 s (60 by default): the tests
        # that kill one wait for that, and the suite's minutes are counted.
        KALLIOPE_NODE_GONE_SECONDS="20",
    )
    env.update(extra)
    return env


class ServeNode:
    """A 'kalliope-tel serve' process whose output goes to a file.

    Not a pipe: a pipe read only at the end fills up (64 KiB) and the node then
    blocks in the middle of a log line, its event loop frozen (seen during a
    database outage: 67 s)."""

    def __init__(self, env: dict[str, str]) -> None:
        import subprocess
        import sys
        import tempfile

        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by finish()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kalliope_tel", "serve"],
            env=env,
            text=True,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def terminate(self) -> None:
        self.proc.terminate()

    def kill(self) -> None:
        self.proc.kill()

    def output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return str(self._log.read())

    def finish(self, timeout: float = 30, *, terminate: bool = True) -> str:
        """Stop the node (SIGTERM) unless it has ended, wait, and return all it wrote."""
        import contextlib
        import signal
        import subprocess

        if terminate and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        stuck = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stuck = True
            self.proc.send_signal(signal.SIGUSR1)  # serve logs where each of its tasks waits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        out = self.output()
        self._log.close()
        # What the node was doing when it would not stop says why.
        assert not stuck, f"serve did not stop within {timeout} s; its last lines:\n{out[-8000:]}"
        return out


def rows_of(session: Session, pbx_id: int) -> dict[str, int]:
    """Every table with a pbx_id column, and how many rows of ``pbx_id`` it holds (a deletion leaves none)."""
    from sqlalchemy import inspect, text

    found = {}
    for table in inspect(session.get_bind()).get_table_names():
        columns = {c["name"] for c in inspect(session.get_bind()).get_columns(table)}
        if "pbx_id" in columns:
            query = text(f"SELECT count(*) FROM {table} WHERE pbx_id = :p")
            count = session.execute(query, {"p": pbx_id}).scalar_one()
            if count:
                found[table] = count
    return found
