"""Kafka clients outside Faust: the command-line tools' (started with an error that says
what is wrong), and a direct read of an offset range."""

from __future__ import annotations

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


async def read_range(
    bootstrap: str, topic: str, partition: int, start: int, end: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records at offsets ``start`` up to ``end`` (excluded) of one partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await start_client(consumer, bootstrap)
    try:
        place = TopicPartition(topic, partition)
        consumer.assign([place])
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
    finally:
        await consumer.stop()


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
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await start_client(consumer, bootstrap)
    try:
        place = TopicPartition(topic, partition)
        ends: dict[TopicPartition, int] = await consumer.end_offsets([place])
        return ends[place]
    finally:
        await consumer.stop()
