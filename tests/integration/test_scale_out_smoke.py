"""The scale-out benchmark's short form runs one worker, then two in one group, and
reports how they shared the work (behaviour, not timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
EVENTS = 3000


def test_two_workers_share_the_intake_and_one_owns_the_ledger() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale_out", "--events", str(EVENTS), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    groups = json.loads(result.stdout)
    assert [group["workers"] for group in groups] == [1, 2]
    for group in groups:
        # every event went through an intake (a rebalance may hand some to a second one)
        assert sum(group["consumed_by_worker"]) >= EVENTS, group
        assert group["events_per_second"] > 0
        assert all(seconds > 0 for seconds in group["cpu_seconds_by_worker"]), group
        assert 0 <= group["ledger_owner_index"] < group["workers"]
    # the events topic's 4 partitions are spread: each worker of the pair read some
    assert all(consumed > 0 for consumed in groups[1]["consumed_by_worker"]), groups[1]
    table = result.stderr
    assert f"scale-out: {EVENTS:,} events, 4 partitions, entity stage off" in table
    assert "(* the worker that owns the ledger)" in table
