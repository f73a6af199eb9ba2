"""Sending events to the events topic: keyed by entity, acks=all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer

from models.events import Event, event_to_json, partition_key
from streams.kafka_clients import start_client
from streams.settings import Settings


class EventProducer:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, event: Event) -> None:
        """Queue one event; :meth:`flush` waits until Kafka acknowledged all of them."""
        await self._producer.send(
            self._topic,
            value=event_to_json(event).encode(),
            key=partition_key(event).encode(),
        )

    async def send_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (for testing the dead-letter path)."""
        await self._producer.send(self._topic, value=value, key=key)

    async def flush(self) -> None:
        await self._producer.flush()


@asynccontextmanager
async def event_producer(settings: Settings) -> AsyncIterator[EventProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=5,
        client_id=f"{settings.app_id}-producer",
    )
    await start_client(producer, settings.kafka_bootstrap)
    try:
        yield EventProducer(producer, settings.events_topic)
        await producer.flush()
    finally:
        await producer.stop()
