"""Tansu reports a partition's end as its last batch's base offset + 1, and Faust's
recovery stops there. A changelog whose last batch holds several records must still be
read in full, by a fresh worker and by one restarted on its data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from models.events import parse_event
from models.ledger import Ledger
from streams.kafka.clients import end_offset
from streams.kafka.topics import ensure_topics
from streams.pipeline.state_table import TableMaps
from streams.settings import Settings
from tests.integration.scenario import SCENARIO
from tests.integration.test_end_to_end import prometheus_values
from tests.integration.workers import WorkerHandle, isolated_settings, start_worker, wait_for
from tests.unit.pipeline_fakes import FakeTable

pytestmark = pytest.mark.timeout(300)


class StateWriter:
    """A ledger on TableMaps, as a worker keeps it, whose flushes are sent here."""

    def __init__(self, settings: Settings) -> None:
        sources = tuple(str(partition) for partition in range(settings.partitions))
        self.maps = TableMaps(FakeTable())
        self.ledger = Ledger(settings.policy(), sources, self.maps)

    def flush_of(self, events: list[int]) -> list[tuple[bytes, bytes | None]]:
        for index in events:
            self.ledger.apply(parse_event(SCENARIO[index]), "0")
        self.ledger.store_changes()
        wal, records = self.maps.take_records()
        self.maps.settle()
        return [(record.key, record.value) for record in wal + records]


async def log_in_one_batch(settings: Settings, records: list[tuple[bytes, bytes | None]]) -> int:
    """The records, all sent in one producer batch; the end the broker reports."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=200)
    await producer.start()
    try:
        sent = [
            await producer.send(settings.changelog_topic(), key=key, value=value, partition=0)
            for key, value in records
        ]
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
    writer = StateWriter(settings)
    asyncio.run(log_in_one_batch(settings, writer.flush_of([0, 1, 2])))
    worker = start_worker(settings, tmp_path, name="worker")  # fresh: reads the changelog
    try:
        wait_for(lambda: ledger_events(worker) == 3, what="all 3 logged events")
        assert "changelog records into the empty local table store" in worker.log_tail(400)
    finally:
        worker.kill()

    # more, past its local store
    asyncio.run(log_in_one_batch(settings, writer.flush_of([3, 4, 5])))
    worker = start_worker(settings, tmp_path, name="worker")  # the same data directory
    try:
        wait_for(lambda: ledger_events(worker) == 6, what="all 6 logged events")
        assert "the broker lost it" not in worker.log_tail(400)
    finally:
        worker.kill()
