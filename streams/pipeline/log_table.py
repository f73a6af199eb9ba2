"""The ledger-log table on Faust: where it is stored, how big its store may grow in
memory, and how a record reaches it.

A record is kept locally only once the changelog has it, in the send's callback and
before Faust moves the table's persisted offset past it. A worker killed in between
reads that record again from the changelog on restart (same key, same value); a
record the broker never took is never kept, so the local store never holds what a
fresh worker reading the changelog would not. A record without a value (a tombstone)
deletes its key the same way, as Faust's recovery does when it reads one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from aiokafka import ConsumerRecord
from faust.types import TP, FutureMessage

from streams.kafka.clients import read_last_batch

MIB = 1024 * 1024
# RocksDB's defaults (a large block cache, several 64 MiB write buffers) would be most of
# a worker's memory on their own; the ledger-log is written in order and read back once
ROCKSDB_OPTIONS: dict[str, Any] = {
    "write_buffer_size": 8 * MIB,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * MIB,
    "block_cache_compressed_size": 0,
}


class FaustLogTable:
    """A Faust table as the stages' LogTable: raw bytes, one changelog partition."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._sending = asyncio.Lock()  # one send() at a time

    async def send(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Deliver ``records`` in order, the last one in a producer batch of its own.

        Tansu reports a partition's end as its last batch's base offset + 1, and Faust's
        recovery refuses a local offset past that end (ConsistencyError): so the
        changelog's last batch must never hold more than one record. Sends go one
        call at a time, and each call's last record waits for the others."""
        if not records:
            return
        async with self._sending:
            *first, (last_key, last_value) = records
            for sent in [self.log(key, value) for key, value in first]:
                await sent
            await self.log(last_key, last_value)

    @property
    def data(self) -> Mapping[bytes, bytes]:
        return self.table.data  # type: ignore[no-any-return]

    def log(self, key: bytes, value: bytes | None) -> asyncio.Future[Any]:
        def keep(sent: FutureMessage) -> None:
            self._put(key, value)  # first: the offset must never pass a missing record
            self.table._on_changelog_sent(sent)  # Faust's own: moves the persisted offset

        return self.table.changelog_topic.send_soon(  # type: ignore[no-any-return]
            key=key,
            value=value,
            partition=0,
            key_serializer="raw",
            value_serializer="raw",
            callback=keep,
            eager_partitioning=True,
        )

    def keep(self, key: bytes, value: bytes | None, offset: int) -> None:
        self._put(key, value)
        store = self.table.data
        changelog = TP(self.table.changelog_topic.get_topic_name(), 0)
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
        # straight from the one partition's database: Faust's own read looks up the
        # current event's partition and keeps an index of keys under a lock
        return partition_db(0).get(key)  # type: ignore[no-any-return]

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        store = self.table.data
        partition_db = getattr(store, "_db_for_partition", None)
        if partition_db is None:  # the memory store: unordered, so every key is looked at
            return iter([(key, value) for key, value in store.items() if key.startswith(prefix)])
        # rocksdb keeps keys sorted: seek to the prefix, stop at the first key past it
        return prefixed_items(partition_db(0).items(from_key=prefix), prefix, store.offset_key)

    def scan_from(self, prefix: bytes, start: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        store = self.table.data
        partition_db = getattr(store, "_db_for_partition", None)
        if partition_db is None:  # the memory store: unordered, so every key is looked at
            found = [(k, v) for k, v in store.items() if k.startswith(prefix) and k >= start]
            return heapq.nsmallest(limit, found)
        items = prefixed_items(partition_db(0).items(from_key=start), prefix, store.offset_key)
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
        # delivery callback runs outside any, and the table has one partition
        elif value is None:
            partition_db(0).delete(key)
        else:
            partition_db(0).put(key, value)


def prefixed_items(
    items: Iterator[tuple[bytes, bytes]], prefix: bytes, offset_key: bytes
) -> Iterator[tuple[bytes, bytes]]:
    for key, value in items:
        if not key.startswith(prefix):
            return
        if key != offset_key:  # Faust's own record of the persisted offset
            yield key, value


async def changelog_end_past_recovery(
    app: Any, bootstrap: str, changelog: str
) -> Sequence[ConsumerRecord[bytes, bytes]]:
    """The changelog's last batch, read directly, unless Faust's recovery found the
    changelog empty (its recorded highwater, the end - 1, is negative): then there is
    nothing it could have missed, and no broker round trip is needed."""
    highwater = app.tables.recovery.active_highwaters.get(TP(changelog, 0))
    if highwater is not None and highwater < 0:
        return ()
    return await read_last_batch(bootstrap, changelog, 0)
