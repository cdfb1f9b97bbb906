"""The lab Asterisk: status, up/down, doctor, lab dial, and DTMF through ARI."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest

from kalliope_tel.asterisk.ari.client import AriClient
from kalliope_tel.asterisk.ari.models import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    Event,
    StasisStart,
)
from kalliope_tel.asterisk.ari.runtime import AriRuntime
from kalliope_tel.lab.instance import REQUIRED_MODULES, LabInstance, LabState
from tests.conftest import LAB_ROOT, kalliope, lab_env

pytestmark = [pytest.mark.integration, pytest.mark.asterisk]


async def test_originate_into_phone_that_presses_1_and_9(lab_state: LabState) -> None:
    client = AriClient(lab_state.ari_url, lab_state.ari_username, lab_state.ari_password, apps=["kt-test"])
    runtime = AriRuntime(client)
    runner = asyncio.create_task(runtime.run())
    seen: list[Event] = []
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        async with runtime.listen() as events:
            channel = await client.originate("Local/s@phone-press19", app="kt-test", app_args=["dtmf"], timeout=15)
            while True:
                event = await asyncio.wait_for(events.get(), 20)
                if event.channel_id == channel.id:
                    seen.append(event)
                if isinstance(event, ChannelDestroyed) and event.channel.id == channel.id:
                    break
    finally:
        await client.aclose()
        runner.cancel()
    types = [e.type for e in seen]
    assert types[0:2] == ["ChannelVarset", "StasisStart"] or "StasisStart" in types
    digits = [e.digit for e in seen if isinstance(e, ChannelDtmfReceived)]
    assert digits == ["1", "9"]
    start = next(e for e in seen if isinstance(e, StasisStart))
    assert start.args == ["dtmf"]
    destroyed = seen[-1]
    assert isinstance(destroyed, ChannelDestroyed) and destroyed.cause == 16


def test_lab_status_shows_asterisk_22_and_modules(lab_state: LabState) -> None:
    result = kalliope("lab", "status", "--json", env=lab_env(lab_state))
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["running"] is True
    assert status["version"].startswith("Asterisk 22.")
    assert status["modules"] == {m: True for m in REQUIRED_MODULES}
    assert set(REQUIRED_MODULES) == {
        "res_ari.so",
        "res_agi.so",
        "chan_rtp.so",
        "res_fax_spandsp.so",
    }


def test_lab_up_then_down_leaves_no_asterisk() -> None:
    name = f"pytest-updown-{uuid.uuid4().hex[:6]}"
    env = {"KALLIOPE_LAB_NAME": name}
    try:
        up = kalliope("lab", "up", env=env)
        assert up.returncode == 0, up.stderr
        assert "Asterisk running" in up.stdout
        state = LabInstance(LAB_ROOT, name).read_state()
        assert state is not None
        os.kill(state.pid, 0)  # alive
        status = json.loads(kalliope("lab", "status", "--json", env=env).stdout)
        assert status["running"] and status["pid"] == state.pid

        down = kalliope("lab", "down", env=env)
        assert down.returncode == 0, down.stderr
        assert "stopped" in down.stdout
        with pytest.raises(ProcessLookupError):
            os.kill(state.pid, 0)
        after = kalliope("lab", "status", "--json", env=env)
        assert after.returncode == 1
        assert json.loads(after.stdout)["running"] is False
    finally:
        LabInstance(LAB_ROOT, name).purge()


def test_doctor_green_against_the_lab(lab_state: LabState, fresh_db_url: str) -> None:
    env = lab_env(lab_state, KALLIOPE_DATABASE_URL=fresh_db_url)
    assert kalliope("db", "upgrade", env=env).returncode == 0
    result = kalliope("doctor", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.returncode == 0, result.stdout
    # The core checks, then one per feature (spandsp binding, hotel classes).
    assert set(checks) == {
        "database", "Asterisk", "ARI", "AMI", "ARI mode", "FastAGI", "hotel", "fax", "fax deliveries", "mail2fax",
        "billing", "lam", "directory", "pms", "web",
    }  # fmt: skip
    assert checks["ARI mode"]["detail"] == "inbound: serve subscribes to kalliope"
    assert "api mode" in checks["fax"]["detail"]  # the compiled binding, where a compiler exists
    assert all(c["ok"] for c in checks.values())
    assert "Asterisk 22." in checks["ARI"]["detail"]
    assert checks["billing"]["detail"].endswith("/log/cdr-custom/kalliope-cdr.json")  # the lab's CDR file


def test_a_new_lab_starts_with_an_empty_cdr_file_and_a_new_store_reads_none_of_the_past(
    fresh_db_url: str,
) -> None:
    """'lab down', 'lab up' and a new database: the calls of the earlier run
    are not the new store's ('billing calls' stays empty until a new call)."""
    name = f"pytest-cdr-{uuid.uuid4().hex[:6]}"
    lab = LabInstance(LAB_ROOT, name)
    env = {"KALLIOPE_LAB_NAME": name, "KALLIOPE_DATABASE_URL": fresh_db_url}
    try:
        lab.start()
        cdr = lab.dir / "log" / "cdr-custom" / "kalliope-cdr.json"
        earlier = {"uniqueid": "1.1", "kt_pbx": "bl", "kt_from": "101", "kt_dialled": "0612345678"}
        cdr.write_text(json.dumps(earlier) + "\n")  # a call of the earlier run, of a PBX gone since
        lab.stop()
        lab.start()
        assert not cdr.exists() or cdr.read_text() == ""
        cdr.write_text(json.dumps(earlier) + "\n")  # and even if such a line were there, a new store skips it
        assert kalliope("db", "upgrade", env=env).returncode == 0
        read = json.loads(kalliope("billing", "reconcile", "--json", env=env).stdout)
        assert (read["lines"], read["recorded"], read["refused"]) == (0, 0, [])
        assert json.loads(kalliope("billing", "calls", "--json", env=env).stdout) == []
    finally:
        lab.purge()


def test_doctor_names_what_is_unreachable_when_lab_is_stopped(fresh_db_url: str) -> None:
    name = f"pytest-stopped-{uuid.uuid4().hex[:6]}"
    lab = LabInstance(LAB_ROOT, name)
    try:
        state = lab.start()
        lab.stop()
        env = {"KALLIOPE_LAB_NAME": name, "KALLIOPE_DATABASE_URL": fresh_db_url}
        result = kalliope("doctor", "--json", env=env)
        assert result.returncode == 1
        checks = {c["name"]: c for c in json.loads(result.stdout)}
        assert not checks["ARI"]["ok"] and state.ari_url in checks["ARI"]["detail"]
        assert not checks["AMI"]["ok"] and str(state.ami_port) in checks["AMI"]["detail"]
        assert not checks["database"]["ok"] and "db upgrade" in checks["database"]["fix"]
        human = kalliope("doctor", env=env)
        assert "FAIL ARI" in human.stdout and "fix:" in human.stdout
    finally:
        lab.purge()


def test_doctor_reports_wrong_ari_password(lab_state: LabState, fresh_db_url: str) -> None:
    env = {
        "KALLIOPE_DATABASE_URL": fresh_db_url,
        "KALLIOPE_ARI_URL": lab_state.ari_url,
        "KALLIOPE_ARI_USERNAME": lab_state.ari_username,
        "KALLIOPE_ARI_PASSWORD": "pw-Zq81x",
        "KALLIOPE_AMI_URL": lab_state.ami_url,
        "KALLIOPE_AMI_USERNAME": lab_state.ami_username,
        "KALLIOPE_AMI_PASSWORD": "pw-Zq81x",
    }
    checks = {c["name"]: c for c in json.loads(kalliope("doctor", "--json", env=env).stdout)}
    assert checks["ARI"]["detail"].endswith("login refused")
    assert checks["AMI"]["detail"].endswith("login refused")
    assert "pw-Zq81x" not in json.dumps(checks)


def test_lab_dial_600_reports_answer_and_prompts(lab_state: LabState) -> None:
    result = kalliope("lab", "dial", "--from", "101", "600", "--json", env=lab_env(lab_state))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["answered"] is True
    assert report["prompts"] == ["hello-world", "beep"]
    assert report["hangup_cause"] == 16
    assert report["applications"][:2] == ["Set", "Set"]  # caller id of 101 applied

    human = kalliope("lab", "dial", "--from", "101", "600", env=lab_env(lab_state))
    assert "101 -> 600: answered" in human.stdout
    assert "hello-world, beep" in human.stdout


def test_lab_dial_unanswered_and_busy(lab_state: LabState) -> None:
    busy = json.loads(kalliope("lab", "dial", "--from", "101", "610", "--json", env=lab_env(lab_state)).stdout)
    assert busy["answered"] is False
    assert busy["dial_status"] == "BUSY"
    assert busy["far_end_cause"] == 17  # User busy

    ring = kalliope(
        "lab",
        "dial",
        "--from",
        "101",
        "611",
        "--ring-timeout",
        "3",
        "--json",
        env=lab_env(lab_state),
    )
    report = json.loads(ring.stdout)
    assert report["answered"] is False
    assert report["hangup_cause"] == 19  # User alerting, no answer
    assert 2.5 < report["duration"] < 10


def test_lab_dial_returns_within_max_duration_when_asterisk_dies() -> None:
    """It used to wait for the end of the call forever once Asterisk was gone."""
    import os
    import subprocess
    import sys
    import time
    import uuid

    from kalliope_tel.lab.dial import HANGUP_GRACE
    from tests.conftest import LAB_ROOT

    doomed = LabInstance(LAB_ROOT, f"pytest-dies-{os.getpid()}-{uuid.uuid4().hex[:4]}")
    state = doomed.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KALLIOPE_")}
        env.update(KALLIOPE_LAB_ROOT=str(LAB_ROOT), KALLIOPE_LAB_NAME=state.name)
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kalliope_tel",
                "lab",
                "dial",
                "--from",
                "101",
                "601",
                "--max-duration",
                "5",
                "--json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Killed once the call is up (the echo test playing), however long the
        # CLI took to start on a loaded machine: a fixed sleep killed it first.
        while not doomed.cli("core show channels concise", check=False).strip():
            assert time.monotonic() - started < 30 and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        answered = time.monotonic()
        time.sleep(1.0)
        doomed.kill()
        out, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - answered
    finally:
        doomed.purge()
    report = json.loads(out)
    assert report["answered"] and report["timed_out"] and report["asterisk_lost"], (report, err)
    assert report["hangup_cause"] is None
    assert elapsed < 5 + HANGUP_GRACE + 2, elapsed  # from the call's start: its cap, the grace, a margin
