"""``kalliope-tel serve`` as a process: serves the dialplan, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from kalliope_tel.lab.instance import LabState
from tests.conftest import LAB_ROOT
from tests.helpers import ari_runtime, run_local_call

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]


def start_serve(state: LabState, db_url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALLIOPE_")}
    env.update(
        KALLIOPE_LAB_ROOT=str(LAB_ROOT),
        KALLIOPE_LAB_NAME=state.name,
        KALLIOPE_DATABASE_URL=db_url,
        KALLIOPE_LOG_FORMAT="json",
    )
    subprocess.run(
        [sys.executable, "-m", "kalliope_tel", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kalliope_tel", "serve"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", state.agi_port)) == 0:
                return proc
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("serve did not start listening")


async def test_serve_finishes_request_in_progress_on_sigterm(lab_state: LabState, fresh_db_url: str) -> None:
    proc = start_serve(lab_state, fresh_db_url)
    try:
        async with ari_runtime(lab_state) as runtime:
            call = asyncio.create_task(run_local_call(runtime, "slow", "kt-lab-agi"))
            await asyncio.sleep(1.0)  # the handler is playing its first prompt
            proc.send_signal(signal.SIGTERM)
            trace = await call
        output, _ = proc.communicate(timeout=20)
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
