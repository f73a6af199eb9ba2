"""The benchmark's events: a seeded funnel simulation, spread over a span of event time."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from models.events import Event, event_to_json, parse_event
from streams.devstack.simulator import FunnelSimulator
from streams.kafka.keys import partition_key

# the simulator emits about 2.2 events per funnel step (a lead, 0.3 conversions, ...)
EVENTS_PER_STEP = 2.2


def step_instant(start: dt.datetime, span: dt.timedelta, step: int, steps: int) -> dt.datetime:
    """``start`` plus ``step / steps`` of ``span``, in whole microseconds rounded as a
    timedelta division rounds (half to even): ``span * step`` as a timedelta overflows
    past ~900,000 steps of a three-year span (a 4,000,000-event history)."""
    span_us = span // dt.timedelta(microseconds=1)
    return start + dt.timedelta(microseconds=round(Fraction(span_us * step, steps)))


@dataclass(frozen=True)
class Record:
    """One event as it goes on the events topic: partition key and canonical JSON."""

    key: bytes
    value: bytes


def to_record(event: Event) -> Record:
    return Record(partition_key(event).encode(), event_to_json(event).encode())


def history_end(now: dt.datetime) -> dt.datetime:
    """Where the pre-loaded history ends: the start of the current UTC day."""
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Workload:
    """A deterministic funnel: ``history`` spans ``span_days`` before ``end``; ``live`` goes on."""

    seed: int
    end: dt.datetime
    span_days: int

    def __post_init__(self) -> None:
        self._simulator = FunnelSimulator(random.Random(self.seed))

    def history(self, count: int) -> list[Record]:
        """``count`` events in event-time order, occurred_at spread evenly over the span."""
        return list(self.stream(count))

    def stream(self, count: int) -> Iterator[Record]:
        """As :meth:`history`, one record at a time (a long history never sits in memory)."""
        steps = max(1, round(count / EVENTS_PER_STEP))
        span = dt.timedelta(days=self.span_days)
        start = self.end - span
        made, step = 0, 0
        while made < count:
            at = step_instant(start, span, min(step, steps - 1), steps)
            raws: list[dict[str, Any]] = self._simulator.step(at)
            for raw in raws[: count - made]:
                yield to_record(parse_event(raw))
            made += min(len(raws), count - made)
            step += 1

    def live(self, at: dt.datetime) -> list[Record]:
        """The events of one more funnel step, stamped ``at`` (for the steady-rate phase)."""
        return [to_record(parse_event(raw)) for raw in self._simulator.step(at)]
