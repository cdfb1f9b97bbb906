"""The benchmark commands run and report complete figures (no timing asserted)."""

from __future__ import annotations

import json

import pytest

from kalliope_tel.lab import dovecot as lab_dovecot
from tests.conftest import kalliope

pytestmark = pytest.mark.integration


def test_bench_agi_reports_each_handler_next_to_the_bare_loop() -> None:
    args = ["--requests", "300", "--rate", "100", "--seconds", "1"]
    result = kalliope("bench", "agi", *args, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # --json: nothing but the document
    reference = report["reference"]
    assert reference["handler"] == "bare-loop" and reference["errors"] == 0
    assert [h["handler"] for h in report["handlers"]] == ["hotel-room-call", "hotel-cleaning", "hotel-outbound-class"]
    for figures in report["handlers"]:
        assert figures["errors"] == 0 and figures["requests"] == 300 and figures["database"] == "sqlite"
        assert figures["throughput_rps"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0
        assert figures["ratio_to_bare_loop"] > 1  # our stack does more than the bare loop
    # The handlers really asked what the dialplan answers (caller, call count).
    commands = {h["handler"]: h["commands_per_request"] for h in report["handlers"]}
    assert commands == {"hotel-room-call": 4, "hotel-cleaning": 5, "hotel-outbound-class": 3}
    one = kalliope("bench", "agi", "--handler", "pbx-name", *args, "--json")
    assert [h["handler"] for h in json.loads(one.stdout)["handlers"]] == ["pbx-name"]
    unknown = kalliope("bench", "agi", "--handler", "no-such-thing", *args, "--json")
    assert unknown.returncode == 1 and "no FastAGI handler 'no-such-thing'" in unknown.stderr


@pytest.mark.asterisk
def test_bench_wakeup_json_last_line() -> None:
    result = kalliope("bench", "wakeup", "--alarms", "30", "--cap", "10", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)  # --json: nothing but the document
    # From the attempt rows: the cap is reached and never passed.
    assert figures["confirmed"] == 30 and figures["max_concurrent_seen"] == 10
    assert figures["lateness_p99_ms"] >= figures["lateness_p50_ms"] >= 0
    assert figures["cpu_ms_per_alarm"] > 0
    # The split adds up: the scheduler's own transactions and the rest.
    assert figures["scheduler_cpu_ms_per_alarm"] > 0 and figures["engine_cpu_ms_per_alarm"] > 0
    total = figures["scheduler_cpu_ms_per_alarm"] + figures["engine_cpu_ms_per_alarm"]
    assert abs(total - figures["cpu_ms_per_alarm"]) < 0.05


@pytest.mark.realtime
def test_bench_fax_reports_every_mode_and_realtime_receptions() -> None:
    # The overload run is left to 'bench fax' itself (--overload, its default):
    # the load limit refusing real calls is test_fax_serve's, and the run
    # cost this sequential phase about 25 s.
    args = ["--pages", "1", "--repeats", "1", "--start", "4", "--step", "4", "--max-receptions", "4", "--no-overload"]
    rt = ["--ramp", "1", "--realtime-pages", "1"]
    result = kalliope("bench", "fax", *args, *rt, "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # --json: nothing but the document
    # ...and the progress on standard error, a line per step with the time so far.
    progress = [line for line in result.stderr.splitlines() if line.startswith("bench fax")]
    assert any("loopback, 1 pages x 1 per mode" in line for line in progress), result.stderr[-2000:]
    assert any("run of" in line and line.endswith(" s)") for line in progress), result.stderr[-2000:]
    figures = {f["mode"]: f for f in report["modes"]}
    assert set(figures) == {"v17-ecm", "v29", "t38"}
    assert all(f["speed_x_realtime"] > 1 for f in figures.values())
    assert figures["v17-ecm"]["c_speed_x_realtime"] and figures["v17-ecm"]["binding_overhead_pct"] is not None
    (run,) = report["realtime_runs"]  # one run of 4, admission off: every fax delivered, one page each
    assert (run["offered"], run["admitted"], run["refused"]) == (4, 4, 0)
    assert (run["delivered"], run["pages"]) == (4, 4), run
    assert run["jitter"]["received"] > 0 and run["peak_load_pct"] > 0
    assert report["realtime_receptions_per_core"] == (4 if run["passed"] else 0)
    assert report.get("overload_run") is None


@pytest.mark.skipif(lab_dovecot.available() is not None, reason=str(lab_dovecot.available()))
def test_bench_mail2fax_reports_idle_and_pop3() -> None:
    result = kalliope("bench", "mail2fax", "--messages", "5", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)  # --json: nothing but the document
    by_protocol = {r["protocol"]: r for r in figures["results"]}
    assert set(by_protocol) == {"imap", "pop3"}
    for row in by_protocol.values():
        assert row["messages"] == row["accepted"] == 5
        assert row["max_ms"] >= row["p99_ms"] >= row["p50_ms"] > row["handling_p50_ms"] > 0


def test_bench_billing_rates_and_matches_sql() -> None:
    result = kalliope("bench", "billing", "--calls", "20000", "--rules", "500", "--sql-calls", "2000", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["calls"] == 20000 and figures["rules"] == 500 and figures["unpriced"] == 0
    assert figures["identical_to_sql"] is True  # the same costs as the SQL rating
    assert figures["calls_per_second"] > 0 and figures["sql_calls_per_second"] > 0


def test_bench_web_reports_commit_to_panel_latency_for_every_panel() -> None:
    result = kalliope("bench", "web", "--panels", "20", "--rate", "5", "--seconds", "2", "--json", timeout=180)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # only JSON on standard output
    assert data["panels"] == 20 and data["changes"] == 10
    assert data["delivered"] == 200 and data["missing"] == 0, data
    assert 0 < data["p50_ms"] <= data["p99_ms"] <= data["max_ms"] < 1000
    assert data["node_cpu_percent"] > 0


def test_bench_logins_counts_every_guess_and_every_write() -> None:
    args = ["--logins", "12", "--clients", "4", "--idle-seconds", "0.5"]
    result = kalliope("bench", "logins", *args, "--json", timeout=180)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["nodes"] == 2 and data["database"] == "sqlite"
    # Every guess is a refused login that cost a hash (each its own address and account: none cut short).
    assert data["statuses"] == {"401": 12}, data
    for phase in ("writes_idle", "writes_during_flood"):
        writes = data[phase]
        assert writes["count"] > 0 and 0 < writes["p50_ms"] <= writes["p99_ms"] <= writes["max_ms"], data
    assert data["target"] == {"writes_during_flood_max_ms": 100}
