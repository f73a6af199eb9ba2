"""Kafka clients outside Faust: the command-line tools' (started with an error that says
what is wrong), and a direct read of an offset range."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.errors import StackError


async def start_client(client: AIOKafkaProducer | AIOKafkaConsumer, bootstrap: str) -> None:
    """Start ``client``; if the broker cannot be reached, release it and raise StackError.

    A start that fails otherwise (or is cancelled, e.g. by a timeout) releases it too.
    """
    try:
        await client.start()
    except BaseException as error:
        await client.stop()
        if isinstance(error, KafkaError):
            raise StackError(f"Kafka at {bootstrap} unreachable: {error}") from error
        raise


@asynccontextmanager
async def partition_reader(
    bootstrap: str, topic: str, partition: int
) -> AsyncIterator[tuple[AIOKafkaConsumer, TopicPartition]]:
    """A consumer outside any group, assigned one partition, stopped afterwards."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await start_client(consumer, bootstrap)
    try:
        place = TopicPartition(topic, partition)
        consumer.assign([place])
        yield consumer, place
    finally:
        await consumer.stop()


async def read_range(
    bootstrap: str, topic: str, partition: int, start: int, end: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records at offsets ``start`` up to ``end`` (excluded) of one partition."""
    async with partition_reader(bootstrap, topic, partition) as (consumer, place):
        consumer.seek(place, start)
        found: list[ConsumerRecord[bytes, bytes]] = []
        while True:
            fetched = (await consumer.getmany(place, timeout_ms=2000)).get(place, [])
            if not fetched:
                return found  # nothing more to read
            for record in fetched:
                if record.offset >= end:
                    return found
                found.append(record)


async def committed_offset(bootstrap: str, group: str, topic: str, partition: int) -> int | None:
    """The consumer group's committed offset for one partition (None: none committed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        place = TopicPartition(topic, partition)
        offsets = await admin.list_consumer_group_offsets(group, partitions=[place])
    finally:
        await admin.close()
    found = offsets.get(place)
    return found.offset if found is not None and found.offset >= 0 else None


async def end_offset(bootstrap: str, topic: str, partition: int) -> int:
    """The offset the next record of one partition will get (its highwater)."""
    async with partition_reader(bootstrap, topic, partition) as (consumer, place):
        ends: dict[TopicPartition, int] = await consumer.end_offsets([place])
        return ends[place]


async def read_last_batch(
    bootstrap: str, topic: str, partition: int, timeout_seconds: float = 10.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records of a partition's last batch, read directly.

    Tansu reports a partition's end as its last batch's base offset + 1, so a reader that
    stops there (Faust's recovery does) misses the rest of that batch. The record at the
    reported end - 1 is that base; the fetch that returns it holds its whole batch. On a
    Kafka that reports the end right, this is the last record alone."""
    async with partition_reader(bootstrap, topic, partition) as (consumer, place):
        ends: dict[TopicPartition, int] = await consumer.end_offsets([place])
        if ends[place] == 0:
            return []
        consumer.seek(place, ends[place] - 1)
        found: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(timeout_seconds):
            while not found:  # until the base arrives (a slow first fetch is waited for)
                fetched = await consumer.getmany(place, timeout_ms=1000)
                found.extend(fetched.get(place, []))
        # anything of the batch a first fetch left out
        found.extend((await consumer.getmany(place, timeout_ms=200)).get(place, []))
        return found


async def topic_exists(bootstrap: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await start_client(consumer, bootstrap)
    try:
        return topic in await consumer.topics()
    finally:
        await consumer.stop()


async def partition_batches(
    bootstrap: str, topic: str, partition: int, end: int
) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
    """The records of one partition from its start to before ``end`` (the true end,
    from :func:`read_last_batch`), as fetched: a list per fetch. Records written after
    are not waited for."""
    if end <= 0:
        return
    async with partition_reader(bootstrap, topic, partition) as (consumer, place):
        consumer.seek(place, 0)
        while await consumer.position(place) < end:
            fetched = (await consumer.getmany(place, timeout_ms=1000)).get(place, [])
            kept = [record for record in fetched if record.offset < end]
            if kept:
                yield kept


async def read_partition(
    bootstrap: str, topic: str, partition: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of one partition, in offset order; none if the topic does not exist.

    The end is the last batch's own (Tansu reports that batch's base offset + 1)."""
    if not await topic_exists(bootstrap, topic):
        return []
    last_batch = await read_last_batch(bootstrap, topic, partition)
    end = last_batch[-1].offset + 1 if last_batch else 0
    return [
        record
        async for records in partition_batches(bootstrap, topic, partition, end)
        for record in records
    ]
