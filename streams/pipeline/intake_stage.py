"""The intake stage: decode and validate events-topic messages. Good events go on to the
by-id topic, re-keyed by event_id (an outside producer's key says nothing of where an id
is deduplicated): one message per by-id partition and batch (one produce per event would
cost more than the rest of the work), each line with its source partition, and with how
far every source of the batch has got, even to a partition none of its events went to.
Bad ones go to dead letters with the reason.

It also reads back any messages its consumer skipped (streams/pipeline/offsets.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from models.errors import InvalidEventError
from models.events import event_to_json
from models.policy import MetricPolicy
from sinks.ops_metrics import OpsMetrics
from streams.kafka.keys import partition_of
from streams.pipeline.intake import check_message, reason_text, reject_reason
from streams.pipeline.offsets import Incoming, skipped_ranges
from streams.pipeline.ports import Headers, ReadRange, Topic

log = logging.getLogger(__name__)
LEDGER_KEY = b"ledger"
ARRIVAL_HEADER = "revpulse-arrival-ms"  # per line, comma-separated
SOURCE_HEADER = "revpulse-source-partition"  # one source for every line (facts messages)
SOURCES_HEADER = "revpulse-sources"  # per line, comma-separated (by-id messages)
# per source of the batch: "partition=latest occurred_at" of its good events, comma-separated
MARKS_HEADER = "revpulse-source-marks"
INTAKE_YIELD_EVERY = 100  # messages the intake checks before it lets other work run


@dataclass(frozen=True)
class Checked:
    """A good event's canonical line, with where and when it arrived."""

    value: bytes
    source: int  # its events-topic partition
    arrival_ms: bytes  # the message's timestamp, in milliseconds, as text


# partition -> the consumer group's committed offset there (None: nothing committed)
CommittedOffset = Callable[[int], Awaitable[int | None]]


def dead_letter_headers(reason: str, message: Incoming) -> Headers:
    return [
        ("revpulse-reason", reason.encode()),
        ("revpulse-source-topic", str(message.topic).encode()),
        ("revpulse-source-partition", str(message.partition).encode()),
        ("revpulse-source-offset", str(message.offset).encode()),
    ]


class IntakeStage:
    def __init__(
        self,
        *,
        policy: MetricPolicy,
        max_future: dt.timedelta,
        events_topic: str,
        by_id: Topic,
        by_id_partitions: int,
        dead_letters: Topic,
        ops: OpsMetrics,
        committed_offset: CommittedOffset,
        read_events: ReadRange,
        batch_max_events: int,
        batch_within_seconds: float,
    ) -> None:
        self.policy = policy
        self.max_future = max_future
        self.events_topic = events_topic
        self.by_id = by_id
        self.by_id_partitions = by_id_partitions
        self.dead_letters = dead_letters
        self.ops = ops
        self.committed_offset = committed_offset
        self.read_events = read_events
        self.batch_max_events = batch_max_events
        self.batch_within_seconds = batch_within_seconds
        # per events partition, the next offset this worker expects to read
        self.next_offsets: dict[int, int] = {}

    async def run(self, stream: Any) -> AsyncIterator[None]:
        """The agent: each batch Faust takes from the events topic, checked and forwarded."""
        async for taken in stream.take_events(
            self.batch_max_events, within=self.batch_within_seconds
        ):
            await self.handle([Incoming.of_event(event) for event in taken])
            yield None

    async def forget_revoked(self, _sender: Any, revoked: Iterable[Any], **_kwargs: Any) -> None:
        """Partitions taken away: their next offsets are unknown when they come back."""
        for tp in revoked:
            if tp.topic == self.events_topic:
                self.next_offsets.pop(tp.partition, None)

    async def handle(self, taken: list[Incoming]) -> None:
        self.ops.last_event.set(time.time())
        batch = await self.with_skipped(taken)
        routed, marks = await self.check(batch, dt.datetime.now(dt.UTC))
        if not marks:  # no good event: nothing to route, no source moved
            return
        marks_header = b",".join(
            f"{source}={mark.isoformat()}".encode() for source, mark in sorted(marks.items())
        )
        for partition in range(self.by_id_partitions):
            lines = routed.get(partition, [])
            await self.by_id.send(
                key=None,
                value=b"\n".join(line.value for line in lines),
                partition=partition,
                headers=[
                    (SOURCES_HEADER, b",".join(str(line.source).encode() for line in lines)),
                    (ARRIVAL_HEADER, b",".join(line.arrival_ms for line in lines)),
                    (MARKS_HEADER, marks_header),
                ],
            )

    async def check(
        self, batch: list[Incoming], now: dt.datetime
    ) -> tuple[dict[int, list[Checked]], dict[int, dt.datetime]]:
        """The canonical lines of the good events, per by-id partition (of their
        event_id), and per source partition the latest occurred_at among them; bad ones
        dead-lettered."""
        routed: dict[int, list[Checked]] = {}
        marks: dict[int, dt.datetime] = {}
        for index, message in enumerate(batch, start=1):
            if index % INTAKE_YIELD_EVERY == 0:  # a full batch is ~100 ms of checks
                await asyncio.sleep(0)
            try:
                parsed = check_message(message.value, self.policy, now, self.max_future)
                line = event_to_json(parsed).encode()
            except Exception as error:  # whatever it is: dead-lettered, the batch goes on
                await self.reject(message, error)
                continue
            self.ops.consumed.labels(parsed.type).inc()
            arrival = str(int(message.timestamp_seconds * 1000)).encode()
            partition = partition_of(parsed.event_id, self.by_id_partitions)
            routed.setdefault(partition, []).append(Checked(line, message.partition, arrival))
            mark = marks.get(message.partition)
            if mark is None or parsed.occurred_at > mark:
                marks[message.partition] = parsed.occurred_at
        return routed, marks

    async def with_skipped(self, batch: list[Incoming]) -> list[Incoming]:
        """``batch`` preceded by any messages the consumer skipped."""
        found: list[Incoming] = []
        for partition in sorted({message.partition for message in batch}):
            expected = self.next_offsets.get(partition)
            if expected is None:  # first seen here: the group's committed offset
                expected = await self.committed_offset(partition)
            offsets = [m.offset for m in batch if m.partition == partition]
            missing, self.next_offsets[partition] = skipped_ranges(expected, offsets)
            for start, end in missing:
                log.warning("events[%d] offsets %d-%d skipped by the consumer; reading them",
                            partition, start, end - 1)  # fmt: skip
                records = await self.read_events(partition, start, end)
                self.ops.events_skipped.inc(len(records))
                found.extend(Incoming.of_record(record) for record in records)
        return found + batch

    async def reject(self, message: Incoming, error: Exception) -> None:
        reason = reason_text(error)
        self.ops.rejected.labels(reject_reason(error)).inc()
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        if isinstance(error, InvalidEventError):
            log.info("dead-lettered %s: %s", where, reason)
        else:
            log.error("dead-lettered %s: %s", where, reason, exc_info=error)
        await self.dead_letters.send(
            key=message.key,
            value=message.value or b"",
            headers=dead_letter_headers(reason, message),
        )
