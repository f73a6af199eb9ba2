"""Tansu reports a partition's end as its last batch's base offset + 1, and Faust's
recovery stops there. A changelog whose last batch holds several records must still be
read in full, by a fresh worker and by one restarted on its data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from models.events import event_to_json, parse_event
from streams.kafka.clients import end_offset
from streams.kafka.topics import ensure_topics
from streams.pipeline.ledger_log import log_records
from streams.settings import Settings
from tests.integration.scenario import SCENARIO
from tests.integration.test_end_to_end import prometheus_values
from tests.integration.workers import WorkerHandle, isolated_settings, start_worker, wait_for

pytestmark = pytest.mark.timeout(300)


def canonical(index: int) -> bytes:
    return event_to_json(parse_event(SCENARIO[index])).encode()


async def log_in_one_batch(settings: Settings, first_offset: int, events: list[int]) -> int:
    """One changelog record per event, all sent in one producer batch; the reported end."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=200)
    await producer.start()
    try:
        sent = []
        for step, index in enumerate(events):
            [(key, value)] = log_records(first_offset + step, [canonical(index)])
            sent.append(
                await producer.send(settings.changelog_topic(), key=key, value=value, partition=0)
            )
        offsets = [(await delivery).offset for delivery in sent]
    finally:
        await producer.stop()
    reported = await end_offset(settings.kafka_bootstrap, settings.changelog_topic(), 0)
    assert reported == offsets[0] + 1 < offsets[-1] + 1  # one batch: the quirk is there
    return reported


def ledger_events(worker: WorkerHandle) -> float | None:
    return prometheus_values(worker.metrics_text()).get(("revpulse_ledger_events", ()))


def test_a_changelog_ending_in_a_multi_record_batch_is_read_in_full(
    kafka: str, redis_url: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka, redis_url)
    asyncio.run(log_in_one_batch(settings, 0, [0, 1, 2]))
    worker = start_worker(settings, tmp_path, name="worker")  # fresh: reads the changelog
    try:
        wait_for(lambda: ledger_events(worker) == 3, what="all 3 logged events")
    finally:
        worker.kill()

    asyncio.run(log_in_one_batch(settings, 3, [3, 4, 5]))  # more, past its local store
    worker = start_worker(settings, tmp_path, name="worker")  # the same data directory
    try:
        wait_for(lambda: ledger_events(worker) == 6, what="all 6 logged events")
        assert "the broker lost it" not in worker.log_tail(400)
    finally:
        worker.kill()
