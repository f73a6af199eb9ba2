"""The scale benchmark's short form runs and prints every figure (behaviour, not timings)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
STAGE = re.compile(
    rf"^\s+(1/4|1/2|all) of M  ledger\s+({NUMBER})  RSS\s+({NUMBER}) MiB  "
    rf"publish compute mean\s+({NUMBER}) ms over ({NUMBER}) publishes, max in \S+ ms  "
    rf"end-to-end\s+({NUMBER}) events/s .* live state ({NUMBER}) series over ({NUMBER}) "
    rf"bucket days",
    re.MULTILINE,
)
TAKEOVER = (
    rf"until /readyz ({NUMBER}) s, until the ledger holds all M again ({NUMBER}) s "
    rf"\(({NUMBER}) s after the ledger was assigned, at ({NUMBER}) s\), "
    rf"changelog records read ({NUMBER}); /metrics meanwhile: longest answer ({NUMBER}) s, "
    rf"({NUMBER}) timeouts of ({NUMBER}) polls"
)
STANDBY = (
    rf"standby takeover: standby partitions assigned, ({NUMBER}) changelog records read at "
    rf"its start, then ({NUMBER}) events sent \(({NUMBER}) changelog records\); from the "
    rf"owner's SIGKILL: until assigned the ledger ({NUMBER}) s, until the ledger holds all M "
    rf"\+ top-up \(({NUMBER})\) again ({NUMBER}) s \(({NUMBER}) s after it\), changelog "
    rf"records read ({NUMBER}) \(\+ ({NUMBER}) of the last batch\); /metrics meanwhile: "
    rf"longest answer ({NUMBER}) s, ({NUMBER}) timeouts of ({NUMBER}) polls"
)
SUMMARY = (
    rf"counted late ({NUMBER}), duplicates ({NUMBER})",
    rf"restart on the same data dir: {TAKEOVER}",
    rf"fresh worker, no local state: {TAKEOVER}",
    STANDBY,
    rf"pipeline end-to-end, all stages ({NUMBER}) events/s",
    rf"bare Faust agent \(decode only\), same topic ({NUMBER}) events/s",
    rf"pipeline / bare Faust agent = ({NUMBER})x",
)


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_short_scale_run_prints_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--events", "20000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "scale FAILED" not in result.stderr
    assert "python -m bench.scale --events 20000" in out
    assert "lateness 7 days" in out  # the default, not one covering the history
    assert "scale: loading: produced" in result.stderr  # the progress line

    stages = STAGE.findall(out)
    assert [stage[0] for stage in stages] == ["1/4", "1/2", "all"], out
    assert [number(stage[1]) for stage in stages] == [5000, 10000, 20000]
    for _share, _ledger, rss, compute, publishes, rate, series, days in stages:
        assert number(rss) > 10 and number(publishes) >= 1 and number(rate) > 0, out
        assert number(compute) > 0 and number(series) > 0, out
        assert number(days) <= 800, out  # the default retention bounds them
    assert number(stages[-1][7]) > 0, out  # the history's last quarter is within it

    found = [match for pattern in SUMMARY if (match := re.search(pattern, out))]
    assert len(found) == len(SUMMARY), f"missing figure lines in:\n{out}"
    late, duplicates = (number(value) for value in found[0].groups())
    assert late == 0 and duplicates == 0, out  # time order + default lateness loses nothing
    for takeover in found[1:3]:
        ready, rebuilt, after, assigned, _tail, _longest, _timeouts, polls = map(
            number, takeover.groups()
        )
        assert 0 < ready <= rebuilt and 0 < assigned <= rebuilt, out
        assert abs(assigned + after - rebuilt) < 0.15, out  # the two parts add up
        assert polls > 0, out  # /metrics was polled during the recovery
    same_dir_tail, fresh_tail = number(found[1].group(5)), number(found[2].group(5))
    # the same data directory reads (almost) nothing of the changelog; a fresh worker all of it
    assert same_dir_tail < fresh_tail and fresh_tail > 0, out
    start, sent, written, assigned, target, held, _after, read, _last, _long, _t, polls = map(
        number, found[3].groups()
    )
    assert start > 0 and sent > 0 and written > 0, out
    assert target == 20000 + sent, out  # the killed owner held the history and the top-up
    assert 0 < assigned <= held and polls > 0, out
    # the standby followed the changelog: its takeover read less than was written meanwhile
    assert read < written, out
    assert number(found[5].group(1)) > 0, out  # the bare agent read the topic
    assert number(found[6].group(1)) > 0, out


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or environment mentions ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            seen = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in seen:
            found.append(int(proc.name))
    return found


def test_a_failure_is_one_line_exit_1_and_stops_everything() -> None:
    # /metrics cannot answer within a microsecond: it fails once the worker is ready
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--events", "2000", "--metrics-timeout", "0.000001"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    failed = [line for line in result.stderr.splitlines() if line.startswith("scale FAILED: ")]
    assert len(failed) == 1, result.stderr[-3000:]
    assert "/metrics" in failed[0]
    kept = re.search(r"logs kept in (\S+)", result.stderr)
    assert kept, result.stderr[-3000:]
    # redis-server runs with --dir <log dir>; the worker with its data dir under it
    assert processes_mentioning(kept.group(1)) == []
