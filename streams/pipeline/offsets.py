"""Finding offsets a consumer skipped.

Faust can skip messages around a rebalance (a prefetched message delivered first, then
a commit past the ones before it; faust-streaming issues 216, 221 and 312). The soak
(bench/soak.py) saw it lose two events on the events topic. An agent that knows the
next offset it should see for a partition can tell: a message past it means the ones
in between were skipped, and it reads them directly. Reading one twice is harmless:
everything downstream deduplicates by event_id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

OffsetRange = tuple[int, int]  # start, end (excluded)


def skipped_ranges(expected: int | None, offsets: Iterable[int]) -> tuple[list[OffsetRange], int]:
    """The ranges missing before and between ``offsets`` (of one partition), starting at
    ``expected`` (None: unknown, nothing before the first counts), and the next expected
    offset. An offset below the expected one (a message read again) is no gap."""
    missing: list[OffsetRange] = []
    for offset in sorted(offsets):
        if expected is not None and offset > expected:
            missing.append((expected, offset))
        if expected is None or offset >= expected:
            expected = offset + 1
    if expected is None:
        raise ValueError("no offsets")
    return missing, expected


@dataclass(frozen=True)
class Incoming:
    """One message of the events topic, from Faust's stream or read directly."""

    topic: str
    partition: int
    offset: int
    timestamp_seconds: float
    key: bytes | None
    value: bytes | None  # None: a tombstone (null value), dead-lettered by the intake

    @classmethod
    def of_event(cls, event: Any) -> Incoming:
        """From a Faust event (its message's timestamp is in seconds)."""
        message = event.message
        return cls(message.topic, message.partition, message.offset, message.timestamp,
                   event.key, event.value)  # fmt: skip

    @classmethod
    def of_record(cls, record: Any) -> Incoming:
        """From an aiokafka ConsumerRecord (its timestamp is in milliseconds)."""
        return cls(record.topic, record.partition, record.offset, record.timestamp / 1000,
                   record.key, record.value)  # fmt: skip
