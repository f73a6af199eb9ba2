"""The ledger's tables on Faust: where they are stored, how big their store may grow in
memory, and how a record reaches them.

A record is kept locally only once the changelog has it: a producer batch is written
to the store when the broker has taken it, and only then is the table's persisted
offset moved past it. A worker killed in between
reads that record again from the changelog on restart (same key, same value); a
record the broker never took is never kept, so the local store never holds what a
fresh worker reading the changelog would not. A record without a value (a tombstone)
deletes its key the same way, as Faust's recovery does when it reads one.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rocksdict
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.types import TP

from models.errors import RevpulseError
from streams.kafka.clients import read_last_batch
from streams.pipeline.ports import LogTable

MIB = 1024 * 1024
# RocksDB's defaults (a large block cache, several 64 MiB write buffers) would be most of
# a worker's memory on their own; the ledger-log is written in order and read back once.
# Bloom filters of 10 bits a key (Faust's default is 3): most reads of the state look up
# an id or entity that is not there yet, and a filter that rules it out without reading
# a block makes such a read about 3 times cheaper (bench.rocksdb_reads: 1.32 -> 0.40 us)
BLOOM_BITS_PER_KEY = 10
ROCKSDB_OPTIONS: dict[str, Any] = {
    "write_buffer_size": 8 * MIB,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * MIB,
    "block_cache_compressed_size": 0,
    "bloom_filter_size": BLOOM_BITS_PER_KEY,
}
# the id gate's table: one database per partition (each with its own cache and write
# buffers), written in small flushes and read by key
GATE_ROCKSDB_OPTIONS: dict[str, Any] = {
    "write_buffer_size": 2 * MIB,
    "max_write_buffer_number": 2,
    "block_cache_size": 4 * MIB,
    "block_cache_compressed_size": 0,
    "bloom_filter_size": BLOOM_BITS_PER_KEY,
}


# A flush's records in as few producer batches as the broker takes in one request (each
# batch waits for the one before it): Faust's default of 16 KiB made a flush of 500
# events some ten round trips
CHANGELOG_BATCH_BYTES = 512 * 1024


class LogTableError(RevpulseError):
    """The changelog did not take a batch of the table's records."""


@dataclass
class _Batch:
    builder: BatchBuilder
    records: list[tuple[bytes, bytes | None]]


def _batches(
    new_batch: Callable[[], BatchBuilder],
    first: Sequence[tuple[bytes, bytes | None]],
    last: tuple[bytes, bytes | None],
) -> Iterator[_Batch]:
    """``first`` in batches as full as the producer allows, then ``last`` alone."""
    batch = _Batch(new_batch(), [])
    for key, value in first:
        if batch.builder.append(key=key, value=value, timestamp=None) is None:  # full
            yield batch
            batch = _Batch(new_batch(), [])
            batch.builder.append(key=key, value=value, timestamp=None)  # a first always fits
        batch.records.append((key, value))
    if batch.records:
        yield batch
    alone = _Batch(new_batch(), [last])
    alone.builder.append(key=last[0], value=last[1], timestamp=None)
    yield alone


class FaustLogTable:
    """One partition of a Faust table as the stages' LogTable: raw bytes.

    Records go to the changelog in producer batches built here, straight on the
    aiokafka producer Faust started: a flush is thousands of small records, and
    Faust's own send path costs a future, a callback and a buffer round per record."""

    def __init__(
        self,
        table: Any,
        producer: Callable[[], Any] | None = None,
        batch_bytes: int = CHANGELOG_BATCH_BYTES,
        partition: int = 0,
    ) -> None:
        """``producer``: gives the started aiokafka producer (Faust's own by default);
        ``partition``: the table's (and its changelog's) partition this one stands for."""
        self.table = table
        self.partition = partition
        self.batch_bytes = batch_bytes
        self._producer = producer or (lambda: table.app.producer._ensure_producer())
        self._sending = asyncio.Lock()  # one send() at a time

    async def send(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Deliver ``records`` in order, the last one in a producer batch of its own,
        keeping each batch locally once the broker has it.

        Tansu reports a partition's end as its last batch's base offset + 1, and Faust's
        recovery refuses a local offset past that end (ConsistencyError): so the
        changelog's last batch must never hold more than one record. Sends go one call
        at a time, and a batch is sent once the one before it was delivered."""
        if not records:
            return
        async with self._sending:
            client = self._producer()
            topic = self.table.changelog_topic.get_topic_name()
            new_batch = functools.partial(BatchBuilder, self.batch_bytes, 0)
            for batch in _batches(new_batch, records[:-1], records[-1]):
                try:
                    delivery = await client.send_batch(
                        batch.builder, topic, partition=self.partition
                    )
                    delivered = await delivery
                except KafkaError as error:
                    raise LogTableError(
                        f"the changelog {topic} did not take a batch: {error!r}"
                    ) from error
                self._keep_batch(batch.records, TP(topic, self.partition), delivered.offset)

    def _keep_batch(
        self, records: Sequence[tuple[bytes, bytes | None]], changelog: TP, first_offset: int
    ) -> None:
        """Records the changelog holds from ``first_offset`` on, kept locally: first the
        records, then the persisted offset, which must never pass a missing record."""
        self._write(records, changelog, first_offset + len(records) - 1)

    def _write(
        self, records: Sequence[tuple[bytes, bytes | None]], changelog: TP, last_offset: int
    ) -> None:
        """``records`` in one write, then the persisted offset moved to ``last_offset``."""
        store = self.table.data
        partition_db = getattr(store, "_db_for_partition", None)
        if partition_db is None:  # the memory store
            for key, value in records:
                self._put(key, value)
            return
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        partition_db(self.partition).write(batch)
        store.set_persisted_offset(changelog, last_offset)

    def persisted_offset(self) -> int | None:
        """The last changelog offset the local store holds (None: none, or a memory
        store, which holds none across restarts)."""
        store = self.table.data
        if getattr(store, "_db_for_partition", None) is None:
            return None
        return store.persisted_offset(self._changelog())  # type: ignore[no-any-return]

    def keep_followed(self, records: Sequence[Any], highwater: int | None) -> None:
        """Changelog records a standby read (streams.pipeline.standby), kept in one write.
        The persisted offset goes past the last of them, but never past the end the
        broker reports (``highwater``: Tansu's is its last batch's base offset + 1, and
        Faust's recovery refuses a persisted offset past it); a record kept past the
        persisted offset is read again at a takeover, the same value in the same order."""
        last = records[-1].offset
        if highwater is not None:
            last = min(last, highwater - 1)
        kept = [(record.key, record.value) for record in records if record.key is not None]
        self._write(kept, self._changelog(), last)

    def _changelog(self) -> TP:
        return TP(self.table.changelog_topic.get_topic_name(), self.partition)

    @property
    def data(self) -> Mapping[bytes, bytes]:
        return self.table.data  # type: ignore[no-any-return]

    def keep(self, key: bytes, value: bytes | None, offset: int) -> None:
        self._put(key, value)
        store = self.table.data
        changelog = TP(self.table.changelog_topic.get_topic_name(), self.partition)
        if offset > (store.persisted_offset(changelog) or -1):
            store.set_persisted_offset(changelog, offset)

    def put_read(self, key: bytes, value: bytes | None) -> None:
        """Keep a record read from the changelog directly (None deletes), leaving the
        persisted offset to the caller."""
        self._put(key, value)

    def get(self, key: bytes) -> bytes | None:
        store = self.table.data
        partition_db = getattr(store, "_db_for_partition", None)
        if partition_db is None:  # the memory store
            return store.get(key)  # type: ignore[no-any-return]
        # straight from the partition's database: Faust's own read looks up the current
        # event's partition and keeps an index of keys under a lock
        return partition_db(self.partition).get(key)  # type: ignore[no-any-return]

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        store = self.table.data
        partition_db = getattr(store, "_db_for_partition", None)
        if partition_db is None:  # the memory store: unordered, so every key is looked at
            return iter([(key, value) for key, value in store.items() if key.startswith(prefix)])
        # rocksdb keeps keys sorted: seek to the prefix, stop at the first key past it
        items = partition_db(self.partition).items(from_key=prefix)
        return prefixed_items(items, prefix, store.offset_key)

    def scan_from(self, prefix: bytes, start: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        store = self.table.data
        partition_db = getattr(store, "_db_for_partition", None)
        if partition_db is None:  # the memory store: unordered, so every key is looked at
            found = [(k, v) for k, v in store.items() if k.startswith(prefix) and k >= start]
            return heapq.nsmallest(limit, found)
        items = prefixed_items(
            partition_db(self.partition).items(from_key=start), prefix, store.offset_key
        )
        return list(itertools.islice(items, limit))

    def _put(self, key: bytes, value: bytes | None) -> None:
        store = self.table.data
        partition_db = getattr(store, "_db_for_partition", None)
        if partition_db is None:  # the memory store
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
        # Faust's rocksdb store takes the partition from the event being processed; a
        # delivery callback runs outside any
        elif value is None:
            partition_db(self.partition).delete(key)
        else:
            partition_db(self.partition).put(key, value)


def prefixed_items(
    items: Iterator[tuple[bytes, bytes]], prefix: bytes, offset_key: bytes
) -> Iterator[tuple[bytes, bytes]]:
    for key, value in items:
        if not key.startswith(prefix):
            return
        if key != offset_key:  # Faust's own record of the persisted offset
            yield key, value


def keep_records_past_recovery(table: LogTable, records: Sequence[Any]) -> int:
    """Keep the changelog records a table recovery did not read (Tansu reports a
    partition's end as its last batch's base offset + 1, and Faust's recovery stops
    there), each later record of a key winning, as in a recovery; returns how many of
    them the table did not hold."""
    missing = 0
    for record in records:
        if record.key is None:
            continue
        if table.get(record.key) != record.value:
            missing += 1
        table.keep(record.key, record.value, record.offset)
    return missing


async def changelog_end_past_recovery(
    app: Any, bootstrap: str, changelog: str, partition: int = 0
) -> Sequence[ConsumerRecord[bytes, bytes]]:
    """The changelog's last batch, read directly, unless Faust's recovery found the
    changelog empty (its recorded highwater, the end - 1, is negative): then there is
    nothing it could have missed, and no broker round trip is needed."""
    highwater = app.tables.recovery.active_highwaters.get(TP(changelog, partition))
    if highwater is not None and highwater < 0:
        return ()
    return await read_last_batch(bootstrap, changelog, partition)
