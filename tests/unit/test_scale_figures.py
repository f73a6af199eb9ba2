"""The scale benchmark's stage line: the compute step's wall time and its CPU time,
read from a worker's /metrics text (no worker here: the text is written out)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from bench.pipeline import parse_samples
from bench.scale import Stage, count_over, max_bucket, publish_times, stage_line
from sinks.ops_metrics import build_ops_metrics


def test_a_stage_line_gives_the_wall_and_cpu_means_of_the_publishes_since_the_last() -> None:
    registry = CollectorRegistry()
    ops = build_ops_metrics(registry)
    ops.publish_seconds.labels("compute").observe(1.0)  # before the stage
    ops.publish_cpu_seconds.observe(0.5)
    before = publish_times(parse_samples(generate_latest(registry).decode()))
    for wall, cpu in ((0.030, 0.010), (0.150, 0.020)):
        ops.publish_seconds.labels("compute").observe(wall)
        ops.publish_cpu_seconds.observe(cpu)
    ops.publish_seconds.labels("redis").observe(9.0)  # another step: not counted
    for lag in (0.002, 0.04, 0.3):
        ops.loop_lag.observe(lag)
    wall_times, cpu_times, lags = publish_times(parse_samples(generate_latest(registry).decode()))
    since, cpu_since = wall_times.minus(before[0]), cpu_times.minus(before[1])
    lag_since = lags.minus(before[2])
    assert lag_since.count == 3 and count_over(lag_since, 0.1) == 1
    assert max_bucket(lag_since) == "250-500 ms"
    assert since.count == 2 and abs(since.sum - 0.180) < 1e-9
    assert cpu_since.count == 2 and abs(cpu_since.sum - 0.030) < 1e-9
    stage = Stage(1000, 2.0, 150.0, 2, 90.0, "100-250 ms", 15.0, "250-500 ms", 3, 1, 774, 800)
    line = stage_line(0, stage, 500.0)
    assert "publish compute mean     90.0 ms over 2 publishes, max in 100-250 ms" in line
    assert "publish compute CPU mean 15.0 ms" in line
    assert "event loop held max in 250-500 ms, 1 of 3 probes over 100 ms" in line
    assert line.endswith("live state 774 series over 800 bucket days")
