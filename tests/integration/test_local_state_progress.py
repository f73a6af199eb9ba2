"""A fresh worker's read of a changelog into its empty local store, against the real
broker: every record read, and the progress /readyz shows meanwhile."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from faust.types import TP

from streams.pipeline.local_state import ready_local_state
from streams.pipeline.log_table import ROCKSDB_OPTIONS, FaustLogTable
from tests.integration.test_read_range import create_topic

RECORDS = 1200


async def write_changelog(kafka: str, topic: str) -> None:
    await create_topic(kafka, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=20)
    await producer.start()
    try:  # sent together: multi-record batches, as a worker's flushes write them
        sent = [producer.send(topic, key=b"k%04d" % n, value=b"v%d" % n) for n in range(RECORDS)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def test_a_fresh_store_reads_the_whole_changelog_and_says_how_far(
    kafka: str, tmp_path: Path
) -> None:
    topic = f"progress-{uuid.uuid4().hex[:8]}"
    asyncio.run(write_changelog(kafka, topic))
    app = faust.App(f"progress-{uuid.uuid4().hex[:8]}", store="rocksdb://", datadir=str(tmp_path))
    table: Any = app.Table(
        "state", partitions=1, key_type=bytes, value_type=bytes, options=ROCKSDB_OPTIONS
    )
    said: list[str] = []
    logged = FaustLogTable(table)
    try:
        read = ready_local_state(logged, kafka, TP(topic, 0), on_disk=True, say=said.append)
        assert read == RECORDS
        assert logged.get(b"k0000") == b"v0" and logged.get(b"k%04d" % (RECORDS - 1))
        assert said[0] == f"checking the local store against changelog {topic}[0]"
        progress = [line for line in said if line.startswith(f"reading changelog {topic}[0]")]
        assert progress and progress[-1].endswith(f"{RECORDS:,} of {RECORDS:,} records")
    finally:
        table.data._dbs.clear()
