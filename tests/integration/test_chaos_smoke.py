"""The chaos runner's short CI form: the fault and hostile-input scenarios no other
integration test covers, each exact. The others have tests of their own, so CI runs
them once: worker-kill (test_soak_smoke, test_recovery), redis-stop
(test_publish_health), redis-restart (test_redis_restart, test_dev_supervision),
poison-kafka (test_poison) and channel-flood (test_channel_flood). Every scenario:
`python -m bench.chaos --short` (about 4 minutes) or `make chaos` (the long form)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos_scenarios import SCENARIOS

REPO = Path(__file__).resolve().parents[2]
CI_SCENARIOS = ("rebalance", "broker-pause", "poison-http", "timestamps", "conflicting-duplicates")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_short_chaos_run_loses_nothing_and_equals_the_oracle() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--short", "--json",
         "--scenarios", ",".join(CI_SCENARIOS)],
        cwd=REPO, capture_output=True, text=True, timeout=590, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    rows = {row["scenario"]: row for row in report["rows"]}
    assert sorted(rows) == sorted(CI_SCENARIOS)
    assert set(CI_SCENARIOS) <= {scenario.name for scenario in SCENARIOS}
    table = result.stderr[result.stderr.find("revpulse chaos") :]
    for name, row in rows.items():
        assert row["sent"] > 0, (name, table)
        assert row["lost"] == row["doubled"] == row["misrouted"] == 0, (name, table)
        assert row["accounted"] == row["sent"], (name, table)
        assert row["oracle_equal"], (name, table)
        assert all(check["ok"] for check in row["checks"]), (name, table)
    # the scenario that rejects poison sent some, and the checks they promise are there
    assert rows["poison-http"]["sent"] > 240
    assert len(rows["timestamps"]["checks"]) == 1
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
