"""Reading the dead-letter topic: what was rejected, why, and where it came from."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.clients import start_client
from streams.settings import Settings

EXCERPT_CHARS = 120


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp_ms: int
    reason: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    value: bytes

    @classmethod
    def from_record(cls, record: Any) -> DeadLetter:
        headers = {key: value.decode("utf-8", "replace") for key, value in record.headers or []}

        def number(name: str) -> int | None:
            text = headers.get(name, "")
            return int(text) if text.lstrip("-").isdigit() else None

        return cls(
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            reason=headers.get("revpulse-reason", "(no reason header)"),
            source_topic=headers.get("revpulse-source-topic"),
            source_partition=number("revpulse-source-partition"),
            source_offset=number("revpulse-source-offset"),
            value=record.value or b"",
        )

    def excerpt(self, chars: int = EXCERPT_CHARS) -> str:
        text = self.value.decode("utf-8", "replace").replace("\n", " ")
        return text if len(text) <= chars else text[: chars - 3] + "..."

    def source(self) -> str:
        if self.source_partition is None:
            return "ledger"  # rejected by the ledger agent (e.g. currency), no source offset
        return f"{self.source_topic}[{self.source_partition}]@{self.source_offset}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.UTC).isoformat(),
            "reason": self.reason,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "dead_letter_partition": self.partition,
            "dead_letter_offset": self.offset,
            "payload": self.value.decode("utf-8", "replace"),
        }

    def payload_line(self) -> str:
        """The payload on one line, for an NDJSON file to fix and re-submit."""
        text = self.value.decode("utf-8", "replace")
        try:
            return json.dumps(json.loads(text), separators=(",", ":"))
        except ValueError:
            return text.replace("\r", " ").replace("\n", " ")


async def read_dead_letters(
    settings: Settings, limit: int, idle_seconds: float = 1.0, max_seconds: float = 60.0
) -> list[DeadLetter]:
    """The most recent ``limit`` dead letters of all partitions, newest first."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id=f"{settings.app_id}-dlq",
    )
    await start_client(consumer, settings.kafka_bootstrap)
    found: list[DeadLetter] = []
    try:
        if settings.dead_letter_topic not in await consumer.topics():
            return []
        partitions = consumer.partitions_for_topic(settings.dead_letter_topic) or set()
        if not partitions:
            return []
        tps = [TopicPartition(settings.dead_letter_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            # the end offset may read low on some brokers: starting earlier only reads more
            consumer.seek(tp, max(starts[tp], ends[tp] - limit))
        async with asyncio.timeout(max_seconds):
            while True:
                batch = await consumer.getmany(timeout_ms=int(idle_seconds * 1000))
                if not batch:
                    break
                for records in batch.values():
                    found.extend(DeadLetter.from_record(record) for record in records)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return newest_first(found, limit)


def newest_first(letters: list[DeadLetter], limit: int) -> list[DeadLetter]:
    """The ``limit`` newest letters across partitions, newest first (by time, then place)."""
    ordered = sorted(
        letters, key=lambda letter: (letter.timestamp_ms, letter.partition, letter.offset)
    )
    return ordered[::-1][:limit]
