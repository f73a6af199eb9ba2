"""Plain aiokafka: pre-loading the events topic, the raw-consume baseline, steady traffic."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from bench.workload import Record


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)


async def preload(
    bootstrap: str,
    topic: str,
    records: Sequence[Record],
    on_acknowledged: Callable[[int], None] | None = None,
) -> float:
    """Send every record (acks=all) and wait for all acknowledgements; return seconds taken.

    ``on_acknowledged(n)`` is told of each block of ``n`` records acknowledged."""
    producer = _producer(bootstrap)
    await producer.start()
    started = time.perf_counter()
    try:
        pending: list[asyncio.Future[object]] = []
        with tqdm(total=len(records), desc="pre-load events topic", unit="ev", disable=None) as bar:
            for record in records:
                pending.append(await producer.send(topic, value=record.value, key=record.key))
                if len(pending) >= 5000:
                    await asyncio.gather(*pending)
                    bar.update(len(pending))
                    if on_acknowledged is not None:
                        on_acknowledged(len(pending))
                    pending.clear()
            await asyncio.gather(*pending)
            bar.update(len(pending))
            if on_acknowledged is not None:
                on_acknowledged(len(pending))
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_consume(bootstrap: str, topic: str, count: int, timeout_seconds: float) -> float:
    """Read ``count`` records from the start of every partition and ``json.loads`` each.

    No consumer group: partitions are assigned directly, as the cheapest possible reader.
    Returns the seconds from the first fetch to the last record decoded.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        seen = 0
        started = time.perf_counter()
        deadline = started + timeout_seconds
        while seen < count:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"raw consume read {seen} of {count} records")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def produce_steadily(
    bootstrap: str,
    topic: str,
    next_records: Callable[[], list[Record]],
    rate_per_second: float,
    duration_seconds: float,
) -> int:
    """Send ``next_records()`` batches paced to ``rate_per_second`` events; return events sent."""
    producer = _producer(bootstrap)
    await producer.start()
    loop = asyncio.get_running_loop()
    sent = 0
    try:
        started = loop.time()
        expected = round(rate_per_second * duration_seconds)
        with tqdm(total=expected, desc="steady produce", unit="ev", disable=None) as bar:
            while loop.time() - started < duration_seconds:
                due = (loop.time() - started) * rate_per_second
                while sent < due:
                    for record in next_records():
                        await producer.send(topic, value=record.value, key=record.key)
                        sent += 1
                        bar.update(1)
                await asyncio.sleep(0.01)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
