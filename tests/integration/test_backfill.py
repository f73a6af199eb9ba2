"""A CSV backfill gives the same figures as the equivalent NDJSON file.

The NDJSON file goes straight to Kafka, the CSV file through the signed HTTP endpoint,
each to its own worker; the published figures must be identical. The size is
REVPULSE_TEST_BACKFILL_EVENTS (default 20,000; docs/ingestion.md, "Backfill files",
gives 100,000-event figures).
A file with one bad line sends nothing to the broker, and with --skip-invalid every
other line, once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.devstack.simulator import FunnelSimulator
from streams.ingest.csv_layouts import write_csv
from streams.kafka.topics import ensure_topics
from tests.integration.ingest import sample
from tests.integration.test_end_to_end import redis_values
from tests.integration.workers import (
    WorkerHandle,
    isolated_settings,
    run_cli,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)
EVENTS = int(os.environ.get("REVPULSE_TEST_BACKFILL_EVENTS", "20000"))


def simulated_events(count: int, seed: int = 11) -> list[dict[str, Any]]:
    simulator = FunnelSimulator(random.Random(seed))
    at = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    events: list[dict[str, Any]] = []
    while len(events) < count:
        events.extend(simulator.step(at))
        at += dt.timedelta(minutes=3)
    return events[:count]


async def event_ids_on_topic(kafka: str, topic: str) -> list[str]:
    """Every event id on the topic, read from the start until nothing more comes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        ids = []
        while batches := await consumer.getmany(timeout_ms=2000):
            for records in batches.values():
                ids.extend(json.loads(record.value)["event_id"] for record in records)
        return ids
    finally:
        await consumer.stop()


def ledger_events(worker: WorkerHandle) -> float:
    return sample(worker.metrics_text(), "revpulse_ledger_events") or 0


def test_csv_backfill_matches_ndjson(kafka: str, redis_url: str, tmp_path: Path) -> None:
    events = simulated_events(EVENTS)
    ndjson = tmp_path / "history.ndjson"
    ndjson.write_text("".join(json.dumps(event) + "\n" for event in events))
    csv_file = tmp_path / "history.csv"
    with csv_file.open("w", newline="") as handle:
        write_csv(events, handle)

    # history spans months and four intake partitions interleave it; each partition keeps
    # its own watermark, so the default 7 days of lateness loses nothing
    settings = [isolated_settings(kafka, redis_url, lateness_seconds=7 * 86400) for _ in range(2)]
    # one after the other: a worker started from a short-lived thread would get SIGTERM
    # when that thread ends (the embedded stack's children die with their parent thread)
    workers = [start_worker(s, tmp_path, f"w{i}") for i, s in enumerate(settings)]
    from_ndjson, from_csv = workers
    try:
        runs = [
            run_cli(from_ndjson.settings, "replay", str(ndjson)),
            run_cli(from_csv.settings, "replay", str(csv_file), "--via", "http"),
        ]
        for result in runs:
            assert result.returncode == 0, result.stderr
            assert f"sent {EVENTS} events" in result.stderr
            assert re.search(r"event/s", result.stderr), result.stderr  # the progress bar
            print("\n" + result.stderr.strip().splitlines()[-1])
        for worker in workers:
            wait_for(
                lambda w=worker: ledger_events(w) == EVENTS,
                timeout_seconds=180,
                what=f"{EVENTS} events in the ledger",
            )

        def same_figures() -> bool:
            first, second = (redis_values(w.settings) for w in workers)
            return bool(first) and first == second and len(first) > 100

        wait_for(same_figures, timeout_seconds=30, what="identical published figures")
        values = redis_values(from_csv.settings)
        assert values[("leads", "365d", "all", "all")] is not None
        assert values[("arr", "point", "all", "all")] is not None
    finally:
        for worker in workers:
            worker.stop()


async def test_one_bad_line_sends_nothing_and_skip_invalid_sends_the_rest(
    kafka: str, redis_url: str, tmp_path: Path
) -> None:
    events = simulated_events(5000, seed=5)
    lines = [json.dumps(event) for event in events]
    lines[-1] = '{"event_id": "bad", "type": "lead.created"}'  # the very last line is bad
    path = tmp_path / "one-bad.ndjson"
    path.write_text("".join(line + "\n" for line in lines))
    settings = isolated_settings(kafka, redis_url)
    await ensure_topics(settings)

    refused = run_cli(settings, "replay", str(path))
    assert refused.returncode == 1, refused.stderr
    assert f"{path}:{len(lines)}: occurred_at: Field required" in refused.stderr
    assert "1 invalid line(s); nothing sent" in refused.stderr
    assert await event_ids_on_topic(kafka, settings.events_topic) == []

    skipped = run_cli(settings, "replay", str(path), "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert f"sent {len(lines) - 1} events" in skipped.stderr
    assert "(skipped 1 invalid)" in skipped.stderr
    on_topic = await event_ids_on_topic(kafka, settings.events_topic)
    assert sorted(on_topic) == sorted(event["event_id"] for event in events[:-1])
