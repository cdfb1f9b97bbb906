"""The benchmark commands run and report complete figures (no timing asserted)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import kalliope

pytestmark = pytest.mark.integration


def test_bench_agi_json_last_line() -> None:
    result = kalliope("bench", "agi", "--requests", "300", "--rate", "100", "--seconds", "1", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["errors"] == 0
    assert figures["requests"] == 300
    assert figures["throughput_rps"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0
    assert figures["database"] == "sqlite"
