"""The entity stage: leads, contracts and accounts, each under its own key, one
by-entity partition at a time (models.entities), spread over workers.

Its input, the by-entity topic, holds two kinds of messages: the events the id gates
admitted, re-keyed by the entity they change (stamped ``g<by-id partition>:<offset>``),
and the hand-offs one key makes to another (a contract to its lead and its account),
sent by this stage itself (stamped ``e<by-entity partition>:<offset>``). What a message
changes in the buckets and the book goes on to the ledger, on the facts topic, as one
message stamped like its hand-offs.

Each sender's stamps arrive in order on each partition, so the highest stamp applied
per sender, kept in the part's own maps and flushed with its state, tells a message
sent again after a crash (upstream or here) from a new one: it is skipped
(streams.pipeline.partitioned_stage has the rest of the exactly-once argument).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from models.entities import EntityState, Input, entity_key
from models.entity_codecs import HANDOFF_MARK, decode_handoff, encode_changes, encode_handoff
from models.events import parse_canonical_event
from models.policy import MetricPolicy
from sinks.ops_metrics import OpsMetrics
from streams.kafka.keys import partition_of
from streams.pipeline.intake_stage import ARRIVAL_HEADER, LEDGER_KEY
from streams.pipeline.partitioned_stage import (
    STAMP_HEADER,
    PartitionedStage,
    ReadChangelogEnd,
    StagePart,
    parse_stamp,
)
from streams.pipeline.ports import LogTable, ReadRange, Topic
from streams.pipeline.state_table import TableMaps

log = logging.getLogger(__name__)

ENTITY_CHUNK_LINES = 100  # inputs applied before the loop may run other work
FROM = "from:"  # in a part's stage map, before a sender: the highest stamp applied


def gate_stamp(partition: int, offset: int) -> bytes:
    """How an id gate stamps what it sends to the entity stage."""
    return f"g{partition}:{offset}".encode()


def entity_stamp(partition: int, offset: int) -> bytes:
    return f"e{partition}:{offset}".encode()


class EntityStage(PartitionedStage[EntityState]):
    name = "entities"  # its parts' maps: entities.*

    def __init__(
        self,
        *,
        policy: MetricPolicy,
        partitions: int,
        table_for: Callable[[int], LogTable],
        by_entity: Topic,
        facts: Topic,
        dead_letters: Topic,
        ops: OpsMetrics,
        read_by_entity: ReadRange,
        recovery_done: Callable[[], bool],
        read_changelog_end: ReadChangelogEnd,
        count_parts: Callable[[int], None],
        holds: Callable[[int], bool] = lambda _partition: True,
    ) -> None:
        """``partitions``: of the by-entity topic, which hand-offs are spread over."""
        super().__init__(
            table_for=table_for, read_input=read_by_entity, recovery_done=recovery_done,
            read_changelog_end=read_changelog_end, count_parts=count_parts, holds=holds,
        )  # fmt: skip
        self.policy = policy
        self.partitions = partitions
        self.by_entity = by_entity
        self.facts = facts
        self.dead_letters = dead_letters
        self.ops = ops

    def open_state(self, maps: TableMaps) -> EntityState:
        return EntityState(self.policy, maps)

    async def apply(
        self, part: StagePart[EntityState], value: bytes, headers: dict[str, bytes], offset: int
    ) -> None:
        """Apply each input, then send the hand-offs to their keys' partitions and the
        changes to the ledger, and wait until the broker has them all."""
        stamp = headers.get(STAMP_HEADER)
        sender, sent_at = parse_stamp(stamp) if stamp else (None, -1)
        if sender is not None:
            applied = part.stage.get(FROM + sender)
            if applied is not None and sent_at <= applied:
                log.info("by-entity[%d]@%d repeats %s@%d, applied before: skipped",
                         part.partition, offset, sender, sent_at)  # fmt: skip
                self.applied(part, offset)
                return
        lines = [line for line in value.split(b"\n") if line] if value else []
        for start in range(0, len(lines), ENTITY_CHUNK_LINES):
            for line in lines[start : start + ENTITY_CHUNK_LINES]:
                await self.apply_line(part.state, line)
            await asyncio.sleep(0)
        await self.send_on(part, offset, headers.get(ARRIVAL_HEADER, b""))
        if sender is not None:
            part.stage.put(FROM + sender, sent_at)
        self.applied(part, offset)

    async def apply_line(self, state: EntityState, line: bytes) -> None:
        """One input. The gate admitted only events the ledger can hold, so one that fails
        here is a fault of this code: dead-lettered with its error, the rest go on."""
        try:
            item: Input = (
                decode_handoff(line) if line.startswith(HANDOFF_MARK)
                else parse_canonical_event(line)
            )  # fmt: skip
            state.apply(item)
        except Exception as error:
            log.exception("the entity stage could not apply an input")
            self.ops.rejected.labels("entities").inc()
            reason = f"the entity stage cannot apply it: {type(error).__name__}: {error}"
            await self.dead_letters.send(value=line, headers=[("revpulse-reason", reason.encode())])

    async def send_on(self, part: StagePart[EntityState], offset: int, arrivals: bytes) -> None:
        out = part.state.take()
        stamp = entity_stamp(part.partition, offset)
        routed: dict[int, list[bytes]] = {}
        for handoff in out.handoffs:
            destination = partition_of(entity_key(handoff), self.partitions)
            routed.setdefault(destination, []).append(encode_handoff(handoff))
        deliveries: list[Awaitable[Any]] = []
        for destination, values in sorted(routed.items()):
            deliveries.append(
                await self.by_entity.send(
                    value=b"\n".join(values),
                    partition=destination,
                    headers=[(STAMP_HEADER, stamp)],
                )
            )
        changes = out.changes()
        if changes:
            deliveries.append(
                await self.facts.send(
                    key=LEDGER_KEY,
                    value=encode_changes(changes),
                    headers=[(STAMP_HEADER, stamp), (ARRIVAL_HEADER, arrivals)],
                )
            )
        for delivery in deliveries:
            await delivery
