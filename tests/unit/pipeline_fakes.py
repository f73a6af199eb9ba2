"""Small fakes of what the pipeline stages need of Faust: a topic that records what it
was sent, and a dict-backed ledger-log table. Everything else in the tests is real."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder


class Delivered:
    """An awaitable that is already done: the broker took the message."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class Lost:
    """An awaitable that fails: the broker never took the message."""

    def __await__(self) -> Generator[Any, None, None]:
        raise ConnectionError("broker unreachable")
        yield


@dataclass(frozen=True)
class Sent:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int | None = None


@dataclass
class FakeTopic:
    """Records each message the broker took; the next ``failures`` sends are lost."""

    failures: int = 0
    sent: list[Sent] = field(default_factory=list)

    async def send(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]:
        if self.failures:
            self.failures -= 1
            return Lost()
        self.sent.append(Sent(key, value, dict(headers or []), partition))
        return Delivered()

    def send_soon(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        self.sent.append(Sent(key, value, dict(headers or [])))

    @property
    def values(self) -> list[bytes | None]:
        return [message.value for message in self.sent]


@dataclass
class FakeTable:
    """The ledger-state table: its data, and every record sent to its changelog; the
    next ``failures`` records sent are lost."""

    data: dict[bytes, bytes] = field(default_factory=dict)
    changelog: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    kept_offsets: list[int] = field(default_factory=list)  # what keep() was given
    failures: int = 0

    def log(self, key: bytes, value: bytes | None) -> Awaitable[Any]:
        """Delivered at once, so kept at once (as the Faust table does on delivery)."""
        if self.failures:
            self.failures -= 1
            return Lost()
        self.changelog.append((key, value))
        self._put(key, value)
        return Delivered()

    async def send(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        for sent in [self.log(key, value) for key, value in records]:
            await sent

    def keep(self, key: bytes, value: bytes | None, offset: int) -> None:
        self._put(key, value)
        self.kept_offsets.append(offset)

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter([(k, v) for k, v in sorted(self.data.items()) if k.startswith(prefix)])

    def scan_from(self, prefix: bytes, start: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        found = [(k, v) for k, v in sorted(self.data.items()) if k.startswith(prefix)]
        return [(k, v) for k, v in found if k >= start][:limit]

    def _put(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value


@dataclass(frozen=True)
class Record:
    """An aiokafka ConsumerRecord, as read directly (timestamp in milliseconds)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class FakeReader:
    """``read_range`` over records held here; remembers what it was asked."""

    records: list[Record] = field(default_factory=list)
    asked: list[tuple[int, int, int]] = field(default_factory=list)

    async def __call__(self, partition: int, start: int, end: int) -> list[Record]:
        self.asked.append((partition, start, end))
        return [r for r in self.records if r.partition == partition and start <= r.offset < end]


class BatchProducer:
    """aiokafka's producer as FaustLogTable sends through it: the batches it is given,
    each delivered when the test says so, at the offsets a broker gives."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.batches: list[tuple[BatchBuilder, asyncio.Future[Any]]] = []
        self.end_offset = 0

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        assert (topic, partition) == (self.topic, 0)
        delivery = asyncio.get_running_loop().create_future()
        self.batches.append((batch, delivery))
        return delivery

    def undelivered(self) -> list[BatchBuilder]:
        return [batch for batch, delivery in self.batches if not delivery.done()]

    def deliver(self) -> None:
        for batch, delivery in self.batches:
            if not delivery.done():
                delivery.set_result(type("Metadata", (), {"offset": self.end_offset})())
                self.end_offset += batch.record_count()

    async def delivering(self, sending: Awaitable[Any]) -> Any:
        """Await ``sending``, delivering each batch it sends."""
        task = asyncio.ensure_future(sending)
        while not task.done():
            await asyncio.sleep(0)
            self.deliver()
        return await task
