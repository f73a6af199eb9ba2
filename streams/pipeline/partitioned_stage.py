"""A stage that keeps state per input partition, each in its own share of a table, and
applies each message exactly once to it: the machinery the id gate and the entity
stage share (streams.pipeline.gate_stage, streams.pipeline.entity_stage).

Each input partition has its own state in its own share of a partitioned table
(RocksDB, a changelog partition each), so N workers each hold about 1/N of it. The
state changes atomically per flush (streams.pipeline.state_table), with the input
offset to read next among its writes.

Exactly once, across a hop: a message is applied and whatever it sends on is
delivered before the state is flushed; a flush comes every few messages, or when the
state has been idle a moment. A crash anywhere leaves the state as it was at the last
flush, so the messages since are applied again to the same state with the same
results, and sent again under the same stamps (input partition and offset): a receiver
keeps the highest stamp it applied per sender and skips one at or below it. A message
below the offset to read next was applied before: skipped here; one past it means
messages in between were acked by Faust but not flushed here (or skipped by the
consumer): they are read directly first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from faust.types import EventT

from models.keyed import COUNT
from streams.pipeline.log_table import keep_records_past_recovery
from streams.pipeline.ports import LogTable, ReadRange
from streams.pipeline.prefixed_table import PrefixedTable
from streams.pipeline.state_table import TableMap, TableMaps

log = logging.getLogger(__name__)

STAMP_HEADER = "revpulse-stamp"  # "<sender>:<offset>" of the input message sent from
NEXT_OFFSET = "next_offset"  # in each part's stage map
RECOVERY_POLL_SECONDS = 0.05
# messages applied (and what they send on delivered) before a part's changes are
# flushed: each flush is two changelog round trips, a message's sends one
FLUSH_EVERY_MESSAGES = 16
FLUSH_AFTER_SECONDS = 0.5  # ... or once the oldest unflushed change is this old

# a partition's changelog records past what Faust's recovery read (Tansu's reported end)
ReadChangelogEnd = Callable[[int], Awaitable[Sequence[Any]]]

S = TypeVar("S")


def partition_prefix(partition: int) -> bytes:
    """Where a partition's keys live in the table (see streams.pipeline.prefixed_table)."""
    return f"{partition}/".encode()


def parse_stamp(header: bytes) -> tuple[str, int]:
    """(sender, offset) of a stamp."""
    sender, _, offset = header.decode().partition(":")
    return sender, int(offset)


@dataclass
class StagePart(Generic[S]):
    """One input partition's state, on its share of the table."""

    partition: int
    maps: TableMaps
    state: S
    stage: TableMap[int]  # the offset to read next, and what the stage keeps of its own
    unflushed: int = 0  # messages applied since the last flush
    unflushed_since: float = 0.0  # monotonic time of the first of them


class PartitionedStage(Generic[S]):
    """Subclasses say how a part's state is made (:meth:`open_state`) and how a message
    is applied to it (:meth:`apply`); ``name`` names the table in logs."""

    name = "stage"

    def __init__(
        self,
        *,
        table_for: Callable[[int], LogTable],
        read_input: ReadRange,
        recovery_done: Callable[[], bool],
        read_changelog_end: ReadChangelogEnd,
        count_parts: Callable[[int], None],
        flush_every_messages: int = FLUSH_EVERY_MESSAGES,
        holds: Callable[[int], bool] = lambda _partition: True,
    ) -> None:
        """``table_for``: an input partition's partition of the table; ``count_parts``:
        told how many parts this worker holds whenever that changes; ``holds``: whether
        this worker is assigned an input partition now (a message of one it no longer
        holds, fetched before a rebalance, is left to the next owner)."""
        self.table_for = table_for
        self.read_input = read_input
        self.recovery_done = recovery_done
        self.read_changelog_end = read_changelog_end
        self.count_parts = count_parts
        self.holds = holds
        self.parts: dict[int, StagePart[S]] = {}
        self.flush_every_messages = flush_every_messages
        self.lock = asyncio.Lock()  # held while a part changes or is flushed

    def open_state(self, maps: TableMaps) -> S:
        raise NotImplementedError

    async def apply(
        self, part: StagePart[S], value: bytes, headers: dict[str, bytes], offset: int
    ) -> None:
        """Apply one message to the part's state and deliver what it sends on; then
        :meth:`applied`."""
        raise NotImplementedError

    async def run(self, stream: Any) -> AsyncIterator[None]:
        """The agent: each message, one at a time, acked by Faust once done."""
        event: EventT[bytes]
        async for event in stream.events():
            message = event.message
            await self.handle(
                message.partition, event.value, dict(message.headers or []), message.offset
            )
            yield None

    async def forget_revoked(self, _sender: Any, revoked: Iterable[Any], **_kwargs: Any) -> None:
        """Partitions taken away: their state is read from the table when they return.

        Waits for a message being applied (and its flush) to finish first: Kafka gives a
        partition to its next owner only once every member has let go of it, so the
        next owner never loads a state this worker is still flushing, and a flush of
        this worker never lands in the changelog after the next owner's."""
        async with self.lock:
            for tp in revoked:
                part = self.parts.pop(tp.partition, None)
                if part is not None and part.unflushed:
                    log.info("%s[%d] revoked: its %d unflushed messages are applied again "
                             "by its next owner", self.name, tp.partition,
                             part.unflushed)  # fmt: skip
        self.count_parts(len(self.parts))

    async def handle(
        self, partition: int, value: bytes, headers: dict[str, bytes], offset: int
    ) -> None:
        while not self.recovery_done():  # a message read before a rebalance: wait it out
            await asyncio.sleep(RECOVERY_POLL_SECONDS)
        async with self.lock:
            if not self.holds(partition):
                log.info("%s input[%d]@%d: the partition moved to another worker: left to it",
                         self.name, partition, offset)  # fmt: skip
                return
            part = await self.part(partition)
            try:
                await self.handle_in(part, value, headers, offset)
            except BaseException:  # its changes may be half made: read it from the table
                self.drop(part)
                raise

    async def handle_in(
        self, part: StagePart[S], value: bytes, headers: dict[str, bytes], offset: int
    ) -> None:
        expected = part.stage.get(NEXT_OFFSET) or 0
        if offset < expected:
            log.debug("%s[%d]@%d was applied before: skipped", self.name, part.partition, offset)
            return
        if offset > expected:
            await self.read_skipped(part, expected, offset)
        await self.apply(part, value, headers, offset)
        if part.unflushed >= self.flush_every_messages:
            await self.flush(part)

    def applied(self, part: StagePart[S], offset: int) -> None:
        """A message's changes are made and what it sent on is delivered."""
        part.stage.put(NEXT_OFFSET, offset + 1)
        if not part.unflushed:
            part.unflushed_since = time.monotonic()
        part.unflushed += 1

    async def flush_idle(self) -> None:
        """Flush each part whose oldest unflushed change is FLUSH_AFTER_SECONDS old (a
        timer: the messages may have stopped)."""
        now = time.monotonic()
        async with self.lock:
            for part in list(self.parts.values()):
                if part.unflushed and now - part.unflushed_since >= FLUSH_AFTER_SECONDS:
                    await self.flush(part)

    def drop(self, part: StagePart[S]) -> None:
        """Forget a part's unflushed changes: it is read from its table again."""
        if self.parts.get(part.partition) is part:
            del self.parts[part.partition]
        self.count_parts(len(self.parts))

    async def part(self, partition: int) -> StagePart[S]:
        """The partition's state, read from its table the first time after a recovery."""
        found = self.parts.get(partition)
        if found is not None:
            return found
        table = self.table_for(partition)
        kept = keep_records_past_recovery(table, await self.read_changelog_end(partition))
        if kept:
            log.warning("%s[%d]: kept %d records of the changelog's last batch the "
                        "recovery had not read", self.name, partition, kept)  # fmt: skip
        maps = TableMaps(PrefixedTable(table, partition_prefix(partition)))
        redone = maps.recover()
        if redone:
            log.warning("%s[%d]: the last flush was cut short: %d of its writes are "
                        "sent again", self.name, partition, redone)  # fmt: skip
        state = self.open_state(maps)
        part = StagePart(partition, maps, state, maps.open(f"{self.name}.stage", COUNT))
        self.parts[partition] = part
        self.count_parts(len(self.parts))
        return part

    async def read_skipped(self, part: StagePart[S], start: int, end: int) -> None:
        """Apply the messages from ``start`` to before ``end``, read directly: the
        consumer skipped them, or a flush failed after they were taken."""
        records = await self.read_input(part.partition, start, end)
        log.warning("%s input[%d] offsets %d-%d not applied yet: read directly (%d messages)",
                    self.name, part.partition, start, end - 1, len(records))  # fmt: skip
        for record in records:
            await self.apply(part, record.value or b"", dict(record.headers or []), record.offset)

    async def flush(self, part: StagePart[S]) -> None:
        """The part's changes, write-ahead records first; a failed send drops the part,
        so that the next message reads it from the table and reads on from there. A
        part this worker no longer holds is not flushed: its next owner redoes it."""
        if self.parts.get(part.partition) is not part:
            return
        wal, records = part.maps.take_records()
        table = part.maps.table
        try:
            for batch in (wal, records):
                await table.send(batch)
        except Exception:
            log.error("%s[%d]: the changelog did not take a flush: the part is read "
                      "from its table again", self.name, part.partition)  # fmt: skip
            self.drop(part)
            raise
        part.maps.settle()
        part.unflushed = 0
