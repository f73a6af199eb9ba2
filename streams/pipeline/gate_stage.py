"""The id gate stage: deduplicates events by event_id and judges lateness, one by-id
partition at a time, and sends the events it admits on to the ledger.

Each by-id partition has its own gate (models.id_gate.IdGate) in its own share of the
id-gate table; how a message is applied exactly once, and sent on under a stamp (by-id
partition and offset) the ledger skips once applied, is streams.pipeline.partitioned_stage.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Callable

from models.entities import entity_key
from models.id_gate import IdGate
from models.policy import MetricPolicy
from sinks.ops_metrics import OpsMetrics
from streams.kafka.keys import partition_of
from streams.pipeline.entity_stage import gate_stamp
from streams.pipeline.intake_stage import (
    ARRIVAL_HEADER,
    LEDGER_KEY,
    MARKS_HEADER,
    SOURCES_HEADER,
)
from streams.pipeline.outcomes import BatchResult, decide_line, send_refused
from streams.pipeline.partitioned_stage import (
    FLUSH_AFTER_SECONDS,
    FLUSH_EVERY_MESSAGES,
    STAMP_HEADER,
    PartitionedStage,
    ReadChangelogEnd,
    StagePart,
    parse_stamp,
    partition_prefix,
)
from streams.pipeline.ports import LogTable, ReadRange, Topic
from streams.pipeline.state_table import TableMaps

log = logging.getLogger(__name__)

__all__ = [
    "GATE_FLUSH_AFTER_SECONDS", "STAMP_HEADER", "GateStage", "parse_stamp", "partition_prefix",
]  # fmt: skip

GATE_CHUNK_EVENTS = 100  # events decided before the loop may run other work
# entries of the ids' index by day read after each chunk (dedup horizon; models.id_gate)
FORGET_IDS_PER_CHUNK = 1000
GATE_FLUSH_EVERY_MESSAGES = FLUSH_EVERY_MESSAGES
GATE_FLUSH_AFTER_SECONDS = FLUSH_AFTER_SECONDS


def parse_marks(header: bytes | None) -> list[tuple[str, dt.datetime]]:
    """The sources' marks a by-id message carries: ``partition=instant`` pairs."""
    if not header:
        return []
    marks = []
    for pair in header.split(b","):
        source, _, instant = pair.decode().partition("=")
        marks.append((source, dt.datetime.fromisoformat(instant)))
    return marks


class GateStage(PartitionedStage[IdGate]):
    name = "gate"  # its parts' maps: gate.*

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
        by_entity: Topic | None = None,
        entity_partitions: int = 1,
        holds: Callable[[int], bool] = lambda _partition: True,
    ) -> None:
        """``table_for``: a by-id partition's partition of the id-gate table.

        ``by_entity``: where admitted events go, re-keyed by the entity they change
        (streams.pipeline.entity_stage), one message per partition of its
        ``entity_partitions``; None: to the ledger, on the facts topic."""
        super().__init__(
            table_for=table_for, read_input=read_by_id, recovery_done=recovery_done,
            read_changelog_end=read_changelog_end, count_parts=ops.gate_partitions.set,
            flush_every_messages=flush_every_messages, holds=holds,
        )  # fmt: skip
        self.policy = policy
        self.sources = sources
        self.facts = facts
        self.dead_letters = dead_letters
        self.late = late
        self.ops = ops
        self.by_entity = by_entity
        self.entity_partitions = entity_partitions

    def open_state(self, maps: TableMaps) -> IdGate:
        return IdGate(self.policy, self.sources, maps, prefix="gate")

    async def apply(
        self, part: StagePart[IdGate], value: bytes, headers: dict[str, bytes], offset: int
    ) -> None:
        """Decide each event and send the admitted on."""
        lines = value.split(b"\n") if value else []
        sources = headers.get(SOURCES_HEADER, b"").decode().split(",")
        arrivals = headers.get(ARRIVAL_HEADER, b"").split(b",")
        result = BatchResult()
        admitted_arrivals: list[bytes] = []
        gate = part.state
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
            if self.by_entity is None:
                await self.send_to_ledger(part, offset, result, admitted_arrivals)
            else:
                await self.send_to_entities(part, offset, result, admitted_arrivals)
            self.ops.gate_admitted.inc(len(result.accepted))
        self.applied(part, offset)
        await send_refused(
            result, policy=self.policy, ops=self.ops, dead_letters=self.dead_letters,
            late=self.late,
        )  # fmt: skip

    async def send_to_ledger(
        self, part: StagePart[IdGate], offset: int, result: BatchResult, arrivals: list[bytes]
    ) -> None:
        stamp = f"{part.partition}:{offset}".encode()
        delivery = await self.facts.send(
            key=LEDGER_KEY,
            value=b"\n".join(result.accepted),
            headers=[(STAMP_HEADER, stamp), (ARRIVAL_HEADER, b",".join(arrivals))],
        )
        await delivery

    async def send_to_entities(
        self, part: StagePart[IdGate], offset: int, result: BatchResult, arrivals: list[bytes]
    ) -> None:
        """One message per by-entity partition that any admitted event's key falls in."""
        assert self.by_entity is not None
        routed: dict[int, list[int]] = {}
        for index, event in enumerate(result.applied):
            routed.setdefault(partition_of(entity_key(event), self.entity_partitions), []).append(
                index
            )
        stamp = gate_stamp(part.partition, offset)
        deliveries = []
        for destination, indexes in sorted(routed.items()):
            times = b",".join(arrivals[i] for i in indexes if i < len(arrivals))
            deliveries.append(
                await self.by_entity.send(
                    value=b"\n".join(result.accepted[i] for i in indexes),
                    partition=destination,
                    headers=[(STAMP_HEADER, stamp), (ARRIVAL_HEADER, times)],
                )
            )
        for delivery in deliveries:
            await delivery
