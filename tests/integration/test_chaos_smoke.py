"""The chaos runner's short CI form: every fault and hostile-input scenario, then exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos_scenarios import SCENARIOS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_short_chaos_run_loses_nothing_and_equals_the_oracle() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--short", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=590, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    rows = {row["scenario"]: row for row in report["rows"]}
    assert sorted(rows) == sorted(scenario.name for scenario in SCENARIOS)
    table = result.stderr[result.stderr.find("revpulse chaos") :]
    for name, row in rows.items():
        assert row["sent"] > 0, (name, table)
        assert row["lost"] == row["doubled"] == row["misrouted"] == 0, (name, table)
        assert row["accounted"] == row["sent"], (name, table)
        assert row["oracle_equal"], (name, table)
        assert all(check["ok"] for check in row["checks"]), (name, table)
    # the scenarios that reject poison sent some, and the checks they promise are there
    assert len(rows["poison-kafka"]["checks"]) == 0 and rows["poison-kafka"]["sent"] > 240
    assert len(rows["channel-flood"]["checks"]) == 1
    assert len(rows["conflicting-duplicates"]["checks"]) == 2
    assert result.returncode == 0, table


def test_help_lists_every_scenario_and_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    for scenario in SCENARIOS:
        assert scenario.name in result.stdout
    for option in ("--scenarios", "--short", "--events", "--json"):
        assert option in result.stdout


def test_an_unknown_scenario_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--scenarios", "worker-kill,meteor"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "meteor" in result.stderr
