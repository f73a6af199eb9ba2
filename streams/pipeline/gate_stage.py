"""The id gate stage: deduplicates events by event_id and judges lateness, one by-id
partition at a time, and sends the events it admits on to the ledger.

Each by-id partition has its own gate (models.id_gate.IdGate) in its own share of the
id-gate table (RocksDB, a changelog partition each), so N workers each hold about 1/N of
the ids. A gate's state changes atomically per flush (streams.pipeline.state_table),
the by-id offset to read next among its writes.

Exactly once, across the hop: a message is applied and its admitted events sent to the
facts topic (and delivered) before the gate's state is flushed; a flush comes every
few messages, or when the gate has been idle a moment. A crash anywhere leaves the
state as it was at the last flush, so the messages since are applied again to the same
state with the same results, and sent again under the same stamps (by-id partition and
offset): the ledger keeps the highest stamp it applied per by-id partition and skips a
message stamped at or below it. A message below the offset to read next was applied
before: skipped here; one past it means messages in between were acked by Faust but not
flushed here (or skipped by the consumer): they are read directly first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import EventT

from models.id_gate import IdGate
from models.keyed import COUNT
from models.policy import MetricPolicy
from sinks.ops_metrics import OpsMetrics
from streams.pipeline.intake_stage import (
    ARRIVAL_HEADER,
    LEDGER_KEY,
    MARKS_HEADER,
    SOURCES_HEADER,
)
from streams.pipeline.log_table import keep_records_past_recovery
from streams.pipeline.outcomes import BatchResult, decide_line, send_refused
from streams.pipeline.ports import LogTable, ReadRange, Topic
from streams.pipeline.prefixed_table import PrefixedTable
from streams.pipeline.state_table import TableMap, TableMaps

log = logging.getLogger(__name__)

STAMP_HEADER = "revpulse-stamp"  # "<by-id partition>:<offset>" of the message admitted from
NEXT_OFFSET = "next_offset"  # in each gate's gate.stage map
GATE_CHUNK_EVENTS = 100  # events decided before the loop may run other work
FORGET_IDS_PER_CHUNK = 1000  # remembered ids looked at after each chunk (dedup horizon)
RECOVERY_POLL_SECONDS = 0.05
# messages applied (and their admitted events delivered) before the gate's changes are
# flushed: each flush is two changelog round trips, a message's forward one
GATE_FLUSH_EVERY_MESSAGES = 16
GATE_FLUSH_AFTER_SECONDS = 0.5  # ... or once the oldest unflushed change is this old

# a partition's changelog records past what Faust's recovery read (Tansu's reported end)
ReadChangelogEnd = Callable[[int], Awaitable[Sequence[Any]]]


def partition_prefix(partition: int) -> bytes:
    """Where a partition's keys live in the table (see streams.pipeline.prefixed_table)."""
    return f"{partition}/".encode()


def parse_marks(header: bytes | None) -> list[tuple[str, dt.datetime]]:
    """The sources' marks a by-id message carries: ``partition=instant`` pairs."""
    if not header:
        return []
    marks = []
    for pair in header.split(b","):
        source, _, instant = pair.decode().partition("=")
        marks.append((source, dt.datetime.fromisoformat(instant)))
    return marks


def parse_stamp(header: bytes) -> tuple[str, int]:
    """(by-id partition, offset) of a stamp."""
    partition, _, offset = header.decode().partition(":")
    return partition, int(offset)


@dataclass
class GatePart:
    """One by-id partition's gate, on its share of the table."""

    partition: int
    maps: TableMaps
    gate: IdGate
    stage: TableMap[int]  # the offset to read next
    unflushed: int = 0  # messages applied since the last flush
    unflushed_since: float = 0.0  # monotonic time of the first of them


class GateStage:
    def __init__(
        self,
        *,
        policy: MetricPolicy,
        sources: tuple[str, ...],
        table_for: Callable[[int], LogTable],
        facts: Topic,
        dead_letters: Topic,
        late: Topic,
        ops: OpsMetrics,
        read_by_id: ReadRange,
        recovery_done: Callable[[], bool],
        read_changelog_end: ReadChangelogEnd,
        flush_every_messages: int = GATE_FLUSH_EVERY_MESSAGES,
    ) -> None:
        """``table_for``: a by-id partition's partition of the id-gate table."""
        self.policy = policy
        self.sources = sources
        self.table_for = table_for
        self.facts = facts
        self.dead_letters = dead_letters
        self.late = late
        self.ops = ops
        self.read_by_id = read_by_id
        self.recovery_done = recovery_done
        self.read_changelog_end = read_changelog_end
        self.parts: dict[int, GatePart] = {}
        self.flush_every_messages = flush_every_messages
        self.lock = asyncio.Lock()  # held while a gate changes or is flushed

    async def run(self, stream: Any) -> AsyncIterator[None]:
        """The agent: each by-id message, one at a time, acked by Faust once done."""
        event: EventT[bytes]
        async for event in stream.events():
            message = event.message
            await self.handle(
                message.partition, event.value, dict(message.headers or []), message.offset
            )
            yield None

    async def forget_revoked(self, _sender: Any, revoked: Iterable[Any], **_kwargs: Any) -> None:
        """Partitions taken away: their gates are read from the table when they return."""
        for tp in revoked:
            self.parts.pop(tp.partition, None)
        self.ops.gate_partitions.set(len(self.parts))

    async def handle(
        self, partition: int, value: bytes, headers: dict[str, bytes], offset: int
    ) -> None:
        while not self.recovery_done():  # a message read before a rebalance: wait it out
            await asyncio.sleep(RECOVERY_POLL_SECONDS)
        async with self.lock:
            part = await self.part(partition)
            try:
                await self.handle_in(part, value, headers, offset)
            except BaseException:  # its changes may be half made: read it from the table
                self.drop(part)
                raise

    async def handle_in(
        self, part: GatePart, value: bytes, headers: dict[str, bytes], offset: int
    ) -> None:
        expected = part.stage.get(NEXT_OFFSET) or 0
        if offset < expected:
            log.debug("by-id[%d]@%d was applied before: skipped", part.partition, offset)
            return
        if offset > expected:
            await self.read_skipped(part, expected, offset)
        await self.apply(part, value, headers, offset)
        if part.unflushed >= self.flush_every_messages:
            await self.flush(part)

    async def flush_idle(self) -> None:
        """Flush each gate whose oldest unflushed change is GATE_FLUSH_AFTER_SECONDS old
        (a timer: the messages may have stopped)."""
        now = time.monotonic()
        async with self.lock:
            for part in list(self.parts.values()):
                if part.unflushed and now - part.unflushed_since >= GATE_FLUSH_AFTER_SECONDS:
                    await self.flush(part)

    def drop(self, part: GatePart) -> None:
        """Forget a gate's unflushed changes: it is read from its table again."""
        if self.parts.get(part.partition) is part:
            del self.parts[part.partition]
        self.ops.gate_partitions.set(len(self.parts))

    async def part(self, partition: int) -> GatePart:
        """The partition's gate, read from its table the first time after a recovery."""
        found = self.parts.get(partition)
        if found is not None:
            return found
        table = self.table_for(partition)
        kept = keep_records_past_recovery(table, await self.read_changelog_end(partition))
        if kept:
            log.warning("id-gate[%d]: kept %d records of the changelog's last batch the "
                        "recovery had not read", partition, kept)  # fmt: skip
        maps = TableMaps(PrefixedTable(table, partition_prefix(partition)))
        redone = maps.recover()
        if redone:
            log.warning("id-gate[%d]: the last flush was cut short: %d of its writes are "
                        "sent again", partition, redone)  # fmt: skip
        gate = IdGate(self.policy, self.sources, maps, prefix="gate")
        part = GatePart(partition, maps, gate, maps.open("gate.stage", COUNT))
        self.parts[partition] = part
        self.ops.gate_partitions.set(len(self.parts))
        return part

    async def read_skipped(self, part: GatePart, start: int, end: int) -> None:
        """Apply the by-id messages from ``start`` to before ``end``, read directly: the
        consumer skipped them, or a flush failed after they were taken."""
        records = await self.read_by_id(part.partition, start, end)
        log.warning("by-id[%d] offsets %d-%d not applied yet: read directly (%d messages)",
                    part.partition, start, end - 1, len(records))  # fmt: skip
        for record in records:
            await self.apply(part, record.value or b"", dict(record.headers or []), record.offset)

    async def apply(
        self, part: GatePart, value: bytes, headers: dict[str, bytes], offset: int
    ) -> None:
        """Decide each event, send the admitted on, then flush the gate's changes."""
        lines = value.split(b"\n") if value else []
        sources = headers.get(SOURCES_HEADER, b"").decode().split(",")
        arrivals = headers.get(ARRIVAL_HEADER, b"").split(b",")
        result = BatchResult()
        admitted_arrivals: list[bytes] = []
        gate = part.gate
        for start in range(0, len(lines), GATE_CHUNK_EVENTS):
            for index in range(start, min(start + GATE_CHUNK_EVENTS, len(lines))):
                source = sources[index] if index < len(sources) else ""
                before = len(result.accepted)
                decide_line(lines[index], functools.partial(gate.admit, source=source), result)
                if len(result.accepted) > before and index < len(arrivals):
                    admitted_arrivals.append(arrivals[index])
            gate.forget_ids(FORGET_IDS_PER_CHUNK)
            await asyncio.sleep(0)
        for source, mark in parse_marks(headers.get(MARKS_HEADER)):
            gate.advance(source, mark)
        if result.accepted:
            stamp = f"{part.partition}:{offset}".encode()
            delivery = await self.facts.send(
                key=LEDGER_KEY,
                value=b"\n".join(result.accepted),
                headers=[(STAMP_HEADER, stamp), (ARRIVAL_HEADER, b",".join(admitted_arrivals))],
            )
            await delivery
            self.ops.gate_admitted.inc(len(result.accepted))
        part.stage.put(NEXT_OFFSET, offset + 1)
        if not part.unflushed:
            part.unflushed_since = time.monotonic()
        part.unflushed += 1
        await send_refused(
            result, policy=self.policy, ops=self.ops, dead_letters=self.dead_letters,
            late=self.late,
        )  # fmt: skip

    async def flush(self, part: GatePart) -> None:
        """The gate's changes, write-ahead records first; a failed send drops the gate,
        so that the next message reads it from the table and reads on from there."""
        wal, records = part.maps.take_records()
        table = part.maps.table
        try:
            for batch in (wal, records):
                await table.send(batch)
        except Exception:
            log.error("id-gate[%d]: the changelog did not take a flush: the gate is read "
                      "from its table again", part.partition)  # fmt: skip
            self.drop(part)
            raise
        part.maps.settle()
        part.unflushed = 0
