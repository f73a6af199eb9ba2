"""The one producer of the events topic: acks=all, each event keyed by the entity it is about.

Every writer of the events topic uses :class:`EventProducer`: the HTTP endpoint (started on
first use, every send bounded by the acknowledgement timeout), and backfill, the simulator
and the tests (started up front by :func:`event_producer`, sends pipelined).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from models.errors import RevpulseError
from models.events import Event, event_to_json
from streams.errors import StackError
from streams.kafka.clients import start_client
from streams.kafka.keys import partition_key
from streams.settings import Settings

PIPELINED_LINGER_MS = 5
HTTP_LINGER_MS = 2


class BrokerUnavailableError(RevpulseError):
    """Kafka did not acknowledge every event in time (the HTTP endpoint answers 503)."""


class EventProducer:
    """An aiokafka producer for the events topic with acks=all, started once on first use.

    Concurrent first sends share one start (under a lock). With ``ack_timeout_seconds``
    each request to the broker, and each :meth:`send_all`, is bounded by it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client_name: str = "producer",
        linger_ms: int = PIPELINED_LINGER_MS,
        ack_timeout_seconds: float | None = None,
    ) -> None:
        self._settings = settings
        self._topic = settings.events_topic
        self._client_id = f"{settings.app_id}-{client_name}"
        self._linger_ms = linger_ms
        self._ack_timeout_seconds = ack_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_http(cls, settings: Settings) -> EventProducer:
        """The HTTP endpoint's producer: small linger, bounded by the ingest ack timeout."""
        return cls(
            settings,
            client_name="ingest",
            linger_ms=HTTP_LINGER_MS,
            ack_timeout_seconds=settings.ingest_ack_timeout_seconds,
        )

    async def start(self) -> AIOKafkaProducer:
        """The started client; raises StackError (and keeps no client) if Kafka is unreachable."""
        async with self._lock:
            if self._producer is None:
                options: dict[str, Any] = {}
                if self._ack_timeout_seconds is not None:
                    options["request_timeout_ms"] = int(self._ack_timeout_seconds * 1000)
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._settings.kafka_bootstrap,
                    acks="all",
                    linger_ms=self._linger_ms,
                    client_id=self._client_id,
                    **options,
                )
                await start_client(producer, self._settings.kafka_bootstrap)
                self._producer = producer
            return self._producer

    async def send(self, event: Event) -> asyncio.Future[Any]:
        """Queue one event; the future (or :meth:`flush`) waits for Kafka's acknowledgement."""
        producer = await self.start()
        delivery: asyncio.Future[Any] = await producer.send(
            self._topic,
            value=event_to_json(event).encode(),
            key=partition_key(event).encode(),
        )
        return delivery

    async def send_all(self, events: Sequence[Event]) -> None:
        """Return once Kafka acknowledged every event, else raise BrokerUnavailableError.

        Bounded by ``ack_timeout_seconds`` (start included), so a caller holding an HTTP
        request open can answer 503 + Retry-After instead of waiting without end.
        """
        try:
            async with asyncio.timeout(self._ack_timeout_seconds):
                futures = [await self.send(event) for event in events]
                await asyncio.gather(*futures)
        except (TimeoutError, OSError, StackError) as error:
            raise BrokerUnavailableError(f"Kafka did not acknowledge: {error!r}") from error
        except Exception as error:
            if type(error).__module__.startswith("aiokafka"):
                raise BrokerUnavailableError(f"Kafka error: {error!r}") from error
            raise

    async def send_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are, bypassing the contract (tests of the dead-letter path)."""
        producer = await self.start()
        await producer.send(self._topic, value=value, key=key)

    async def flush(self) -> None:
        """Until every queued event is acknowledged (nothing to do before the first send)."""
        if self._producer is not None:
            await self._producer.flush()

    async def close(self) -> None:
        async with self._lock:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await producer.stop()


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
    """An :class:`EventProducer` started up front (StackError at once if Kafka is unreachable),
    flushed on a normal exit and closed however the block ends."""
    producer = EventProducer(settings)
    await producer.start()
    try:
        yield producer
        await producer.flush()
    finally:
        await producer.close()
