"""Sending events to the events topic: keyed by entity, acks=all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from models.errors import RevpulseError
from models.events import Event, event_to_json
from streams.kafka.clients import start_client
from streams.kafka.keys import partition_key
from streams.settings import Settings


class EventProducer:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, event: Event) -> asyncio.Future[Any]:
        """Queue one event; the future (or :meth:`flush`) waits for Kafka's acknowledgement."""
        delivery: asyncio.Future[Any] = await self._producer.send(
            self._topic,
            value=event_to_json(event).encode(),
            key=partition_key(event).encode(),
        )
        return delivery

    async def send_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (for testing the dead-letter path)."""
        await self._producer.send(self._topic, value=value, key=key)

    async def flush(self) -> None:
        await self._producer.flush()


class PipelinedSender:
    """Sends chunks of events with at most two chunks un-acknowledged, so memory stays flat.

    A chunk is queued, then the previous chunk's acknowledgements are awaited: the
    producer keeps sending while the caller reads the next chunk. A failed delivery
    raises RevpulseError instead of being lost with its future.
    """

    def __init__(self, producer: EventProducer) -> None:
        self._producer = producer
        self._pending: list[asyncio.Future[Any]] = []

    async def send_chunk(self, events: Sequence[Event]) -> None:
        queued = [await self._producer.send(event) for event in events]
        await self.wait()
        self._pending = queued

    async def wait(self) -> None:
        """Until every queued event is acknowledged."""
        pending, self._pending = self._pending, []
        results = await asyncio.gather(*pending, return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            error = failures[0]
            if isinstance(error, KafkaError):
                raise RevpulseError(
                    f"Kafka did not acknowledge {len(failures)} of {len(pending)} events: {error!r}"
                ) from error
            raise error


@asynccontextmanager
async def pipelined_sender(producer: EventProducer) -> AsyncIterator[PipelinedSender]:
    """A :class:`PipelinedSender` that waits for every acknowledgement on a normal exit."""
    sender = PipelinedSender(producer)
    yield sender
    await sender.wait()


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
