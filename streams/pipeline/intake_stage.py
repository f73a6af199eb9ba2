"""The intake stage: decode and validate events-topic messages. Good events go on to the
facts topic, one message per source partition and batch (one produce per event would
cost more than the rest of the work); bad ones go to dead letters with the reason.

It also reads back any messages its consumer skipped (streams/pipeline/offsets.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from models.errors import InvalidEventError
from models.events import event_to_json
from models.policy import MetricPolicy
from sinks.ops_metrics import OpsMetrics
from streams.pipeline.intake import check_message, reason_text, reject_reason
from streams.pipeline.offsets import Incoming, skipped_ranges
from streams.pipeline.ports import Headers, ReadRange, Topic

log = logging.getLogger(__name__)
LEDGER_KEY = b"ledger"
ARRIVAL_HEADER = "revpulse-arrival-ms"
SOURCE_HEADER = "revpulse-source-partition"
INTAKE_YIELD_EVERY = 100  # messages the intake checks before it lets other work run

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
        facts: Topic,
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
        self.facts = facts
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
        lines, arrivals = await self.check(batch, dt.datetime.now(dt.UTC))
        for partition, partition_lines in lines.items():
            await self.facts.send(
                key=LEDGER_KEY,
                value=b"\n".join(partition_lines),
                headers=[
                    (ARRIVAL_HEADER, b",".join(arrivals[partition])),
                    (SOURCE_HEADER, str(partition).encode()),
                ],
            )

    async def check(
        self, batch: list[Incoming], now: dt.datetime
    ) -> tuple[dict[int, list[bytes]], dict[int, list[bytes]]]:
        """Per source partition (the ledger keeps a watermark for each): the canonical
        lines of the good events and their arrival times; bad ones dead-lettered."""
        lines: dict[int, list[bytes]] = {}
        arrivals: dict[int, list[bytes]] = {}
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
            lines.setdefault(message.partition, []).append(line)
            arrival = str(int(message.timestamp_seconds * 1000)).encode()
            arrivals.setdefault(message.partition, []).append(arrival)
        return lines, arrivals

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
