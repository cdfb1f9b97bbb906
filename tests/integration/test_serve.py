"""``kalliope-tel serve`` as a process: serves the dialplan, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time

import pytest

from kalliope_tel.lab.instance import LabState
from tests.helpers import ServeNode, ari_runtime, run_local_call, serve_env

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]


def _wait_listening(port: int, proc: ServeNode, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.output()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("serve did not start listening")


def start_serve(state: LabState, db_url: str, **extra_env: str) -> ServeNode:
    env = serve_env(state, db_url, **extra_env)
    subprocess.run(
        [sys.executable, "-m", "kalliope_tel", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    proc = ServeNode(env)
    _wait_listening(state.agi_port, proc)
    return proc


async def test_serve_finishes_request_in_progress_on_sigterm(lab_state: LabState, fresh_db_url: str) -> None:
    proc = start_serve(lab_state, fresh_db_url)
    try:
        async with ari_runtime(lab_state) as runtime:
            call = asyncio.create_task(run_local_call(runtime, "slow", "kt-lab-agi"))
            await asyncio.sleep(1.0)  # the handler is playing its first prompt
            proc.send_signal(signal.SIGTERM)
            trace = await call
        output = proc.finish(20, terminate=False)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    # The request running at SIGTERM completed and told the dialplan so.
    assert trace.variables()["KT_RESULT"] == "SUCCESS"
    events = [line for line in output.splitlines() if line.startswith("{")]
    names = [__import__("json").loads(line)["event"] for line in events]
    assert "serve.started" in names and names[-1] == "serve.stopped"
    assert lab_state.ari_password not in output and lab_state.ami_password not in output


def test_two_serve_nodes_reset_each_occupied_room_once(lab_state: LabState, tmp_path: object) -> None:
    """Nightly reset with two serve processes racing on one PostgreSQL."""
    from datetime import time as clock

    from sqlalchemy import select

    from kalliope_tel.config import Settings
    from kalliope_tel.container import Container
    from kalliope_tel.db import migrate
    from kalliope_tel.db.engine import transaction
    from kalliope_tel.hotel import services, stays
    from kalliope_tel.hotel.models import CleaningEvent, CleaningSource, NightlyReset
    from kalliope_tel.lab.ports import free_tcp_port
    from kalliope_tel.tenancy.services import get_pbx
    from tests.conftest import _pg_dsn, create_pg_database, drop_pg_database

    name = create_pg_database()
    url = _pg_dsn(name)
    container = Container(Settings(database_url=url))
    try:
        migrate.upgrade(container.engine)
        with transaction(container.sessions) as s:
            pbx = get_pbx(s)
            services.ensure_default_classes(s, pbx)
            services.create_template(s, pbx, "std")
            for ext in range(101, 121):
                services.create_room(s, pbx, str(ext), "", "std")
            for ext in range(101, 111):  # ten occupied rooms
                stays.check_in(s, pbx, str(ext), f"Guest {ext}")
            # Due now: midnight has passed today in the PBX's timezone (UTC).
            services.update_settings(s, pbx, nightly_dirty_at=clock(0, 0))
        nodes, ports = [], []
        for node in ("node-a", "node-b"):
            ports.append(free_tcp_port())
            env = serve_env(
                lab_state,
                url,
                KALLIOPE_AGI_BIND=f"127.0.0.1:{ports[-1]}",
                KALLIOPE_NODE_NAME=node,
                KALLIOPE_SCHEDULER_INTERVAL_SECONDS="0.2",
            )
            nodes.append(ServeNode(env))
        # Both nodes up (signal handlers installed) before the clock starts:
        # a SIGTERM during start-up on a loaded machine killed one silently.
        for port, proc in zip(ports, nodes, strict=True):
            _wait_listening(port, proc)
        time.sleep(6)  # many scheduler ticks on both nodes
        for proc in nodes:
            proc.send_signal(signal.SIGTERM)
        outputs = [proc.finish(20, terminate=False) for proc in nodes]
        assert all(proc.returncode == 0 for proc in nodes), outputs
        with container.sessions() as s:
            resets = s.scalars(select(NightlyReset)).all()
            nightly = s.scalars(
                select(CleaningEvent.room_id).where(CleaningEvent.source == CleaningSource.NIGHTLY)
            ).all()
            dirty = [r.extension for r in services.list_rooms(s, get_pbx(s), services.RoomFilter(clean=False))]
        assert len(resets) == 1 and resets[0].rooms == 10
        assert sorted(nightly) == sorted(set(nightly)) and len(nightly) == 10  # each room once
        assert dirty == [str(e) for e in range(101, 111)]
        assert sum("hotel.nightly_reset" in out for out in outputs) == 1  # one node did it
    finally:
        container.close()
        drop_pg_database(name)
