"""The ledger's direct read of skipped facts offsets, against the real broker."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.clients import read_range


async def create_topic(kafka: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


async def test_reads_exactly_the_offsets_asked_for(kafka: str) -> None:
    topic = f"read-range-{uuid.uuid4().hex[:8]}"
    await create_topic(kafka, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for index in range(6):  # one at a time: one record per batch
            await producer.send_and_wait(
                topic, value=f"m{index}".encode(), headers=[("n", str(index).encode())]
            )
    finally:
        await producer.stop()

    records = await read_range(kafka, topic, 0, 2, 5)
    assert [(r.offset, r.value, dict(r.headers)["n"]) for r in records] == [
        (2, b"m2", b"2"), (3, b"m3", b"3"), (4, b"m4", b"4"),
    ]  # fmt: skip
    assert [r.offset for r in await read_range(kafka, topic, 0, 4, 99)] == [4, 5]
    assert await read_range(kafka, topic, 0, 6, 9) == []


async def test_committed_offset_of_a_group(kafka: str) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.kafka.clients import committed_offset

    topic, group = f"committed-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    await create_topic(kafka, topic)
    assert await committed_offset(kafka, group, topic, 0) is None  # nothing committed yet
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group)
    await consumer.start()
    try:
        place = TopicPartition(topic, 0)
        consumer.assign([place])
        await consumer.commit({place: 3})
    finally:
        await consumer.stop()
    assert await committed_offset(kafka, group, topic, 0) == 3
