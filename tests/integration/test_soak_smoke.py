"""The soak's short CI form: workers killed under duplicated, shuffled traffic, then exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]


def test_short_soak_with_kills_equals_the_oracle() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--minutes", "1", "--kill-every", "25",
         "--rate", "40", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=290, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert report["kills"] == 2
    assert report["duplicates_sent"] > 0
    assert report["distinct_events"] >= 2000
    assert report["rejected"] == report["late"] == 0
    state = report["state"]  # read back from the ledger-state changelog
    assert state["accepted_count"] == state["applied_ids"] == report["distinct_events"]
    assert 0 < state["state_keys"] <= state["changelog_records"]
    comparisons = report["comparisons"]
    assert len(comparisons) == 5
    for label, outcome in comparisons.items():
        assert outcome["series"] > 500 and outcome["differing"] == 0, (label, outcome)
    assert "equal to the oracle" in result.stderr


def test_help_describes_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    for option in ("--minutes", "--rate", "--workers", "--kill-every", "--duplicates"):
        assert option in result.stdout
