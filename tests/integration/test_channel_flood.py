"""A flood of distinct channels: /metrics stays small and the event loop stays responsive."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.events import parse_event
from streams.kafka.producer import event_producer
from streams.settings import Settings
from tests.integration.ingest import sample
from tests.integration.test_end_to_end import redis_values
from tests.integration.workers import isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(300)

CHANNELS = 10_000
MAX_CHANNELS = 100


async def send_flood(settings: Settings) -> None:
    async with event_producer(settings) as producer:
        for n in range(CHANNELS):
            await producer.send(parse_event({
                "event_id": f"flood-{n}", "type": "lead.created",
                "occurred_at": f"2026-03-{1 + n % 28:02d}T12:00:00Z",
                "data": {"lead_id": f"L{n}", "channel": f"ch_{n}", "origin": "marketing"},
            }))  # fmt: skip
        await producer.flush()


def lag_buckets(text: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of revpulse_event_loop_lag_seconds."""
    for family in text_string_to_metric_families(text):
        if family.name == "revpulse_event_loop_lag_seconds":
            return sorted((float(s.labels["le"]), s.value) for s in family.samples
                          if s.name.endswith("_bucket"))  # fmt: skip
    raise AssertionError("no revpulse_event_loop_lag_seconds")


def lag_quantiles(
    before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> tuple[float, float, int]:
    """Between two readings: (bucket bound holding the 99th percentile, bucket bound
    holding every probe, probes)."""
    buckets = [(bound, count - was) for (bound, count), (_, was) in zip(after, before, strict=True)]
    total = buckets[-1][1]
    p99 = next(bound for bound, count in buckets if count >= 0.99 * total)
    most = next(bound for bound, count in buckets if count >= total)
    return p99, most, int(total)


def test_ten_thousand_channels_keep_metrics_small_and_the_loop_responsive(
    kafka: str, redis_url: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka, redis_url, clock="wall", max_channels=MAX_CHANNELS)
    worker = start_worker(settings, tmp_path)
    try:
        before = lag_buckets(worker.metrics_text())
        started = time.monotonic()
        asyncio.run(send_flood(settings))
        wait_for(
            lambda: redis_values(settings).get(("leads", "365d", "all", "all")) == CHANNELS,
            timeout_seconds=120,
            what="every lead of the flood counted",
        )
        elapsed = time.monotonic() - started
        text = worker.metrics_text()
        size = len(text.encode())
        p99, most, count = lag_quantiles(before, lag_buckets(text))
        compute = [
            (s.labels.get("le"), s.value)
            for f in text_string_to_metric_families(text)
            if f.name == "revpulse_publish_duration_seconds"
            for s in f.samples
            if s.labels.get("step") == "compute" and s.name.endswith("_bucket")
        ]
        print(
            f"\nflood of {CHANNELS} channels in {elapsed:.1f} s: /metrics {size} bytes; "
            f"loop lag p99 <= {p99} s, max <= {most} s over {count} probes; "
            f"compute buckets {compute}; lag buckets (bound, probes) "
            f"{[(b, c - w) for (b, c), (_, w) in zip(lag_buckets(text), before, strict=True)]}"
        )
        assert size < 1_000_000
        overflowed = sample(text, "revpulse_channels_overflowed_total")
        assert overflowed == CHANNELS - MAX_CHANNELS
        figures = redis_values(settings)
        channels = {series[3] for series in figures if series[0] == "leads"}
        assert "overflow" in channels and len(channels) <= MAX_CHANNELS + 3  # all, unknown
        assert figures[("leads", "365d", "all", "overflow")] == CHANNELS - MAX_CHANNELS
        print("\n".join(line for line in text.splitlines()
                        if line.startswith("revpulse_event_loop_lag_seconds")))  # fmt: skip
        # the issue saw the loop held for 86 s; the target is p99 < 0.1 s and max < 0.25 s,
        # which a 2-core machine shared with other work does not always show: held to
        # a bound a blocking publisher (seconds) fails
        assert not math.isinf(most) and most <= 2.5 and p99 <= 1.0, (p99, most)
    finally:
        worker.stop()
