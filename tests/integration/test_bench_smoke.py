"""The benchmark's short CI form runs and reports every figure (behaviour, not timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
FIGURE_LABELS = (
    "raw aiokafka consume + json.loads (baseline)",
    "domain: parse_event_bytes",
    "domain: Ledger.apply",
    "domain: compute_points",
    "pipeline: intake agent read all N",
    "pipeline: end-to-end, ledger holds all N",
    "event-to-publish latency p50",
    "event-to-publish latency p95",
    "crash recovery: new worker start until /readyz",
    "crash recovery: until the ledger holds all again",
)
FIGURE_NAMES = (
    "raw_consume_events_per_second",
    "parse_events_per_second",
    "ledger_apply_events_per_second",
    "compute_points_ms",
    "pipeline_events_per_second",
    "latency_p50_seconds",
    "latency_p95_seconds",
    "recovery_ready_seconds",
    "recovery_rebuilt_seconds",
)


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.throughput", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )


def test_quick_bench_reports_every_figure() -> None:
    # --json: the JSON object on stdout, the table for people on stderr
    result = run_bench("--events", "2000", "--quick", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stderr
    for label in FIGURE_LABELS:
        assert label in table, f"{label!r} missing from:\n{table}"
    assert "python -m bench.throughput --events 2000 --quick --json" in table
    assert "cores" in table and "N=2,000" in table
    assert "pipeline / raw consume = " in table

    report = json.loads(result.stdout)
    assert report["events"] == 2000
    assert report["machine"]["cores"] >= 1
    for name in FIGURE_NAMES:
        assert report["figures"][name]["value"] > 0, name
    assert report["ratios_to_raw_consume"]["pipeline_events_per_second"] > 0
    # every event reached the ledger; none was rejected, late or dropped on the way
    after = report["counters"]["after_backlog"]
    assert after["ledger"] == 2000
    assert after["rejected"] == after["late"] == after["duplicates"] == 0
    at_end = report["counters"]["at_end"]
    assert at_end["ledger"] == 2000 + report["figures"]["steady_sent_events"]["value"]
    # the worker times its publishes, by step
    assert at_end["publishes"] > 0
    assert at_end["publish_compute_mean_ms"] > 0 and at_end["publish_redis_mean_ms"] > 0
    # a worker started after the first was killed rebuilt the same ledger and figures
    recovery = report["info"]["recovery"]
    assert recovery["series"] > 100 and recovery["identical"], recovery
    assert report["counters"]["after_recovery"]["ledger"] == at_end["ledger"]
    assert "published series after the rebuild are identical" in table


def test_help_describes_the_options() -> None:
    result = run_bench("--help")
    assert result.returncode == 0
    for option in ("--events", "--rate", "--json", "--quick", "--duration", "--repeat"):
        assert option in result.stdout
