"""One partition's share of a partitioned table, under a key prefix of its own.

On RocksDB each partition of a Faust table has a database of its own, but Faust's
memory store keeps every partition in one dict, and its recovery reads every
changelog partition into it: keys that repeat across partitions (a mark, a wal part)
would overwrite each other there. A prefix per partition keeps them apart on both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from streams.pipeline.ports import LogTable


class PrefixedTable:
    """A LogTable whose keys are the wrapped table's keys that start with ``prefix``,
    without it."""

    def __init__(self, table: LogTable, prefix: bytes) -> None:
        self.table = table
        self.prefix = prefix

    async def send(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        await self.table.send([(self.prefix + key, value) for key, value in records])

    def keep(self, key: bytes, value: bytes | None, offset: int) -> None:
        self.table.keep(self.prefix + key, value, offset)

    def get(self, key: bytes) -> bytes | None:
        return self.table.get(self.prefix + key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        start = len(self.prefix)
        return ((key[start:], value) for key, value in self.table.scan(self.prefix + prefix))

    def scan_from(self, prefix: bytes, start: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        cut = len(self.prefix)
        found = self.table.scan_from(self.prefix + prefix, self.prefix + start, limit)
        return [(key[cut:], value) for key, value in found]
