"""What the id gate costs per event, and what its forget passes read: pure, no broker.

Admits a time-ordered stream of ``--events`` spend events (``--days`` of event time,
ids in random key order, as real event ids are) through one :class:`models.id_gate.IdGate`
on maps in memory, in chunks of ``GATE_CHUNK_EVENTS``, calling ``forget_ids`` with
``FORGET_IDS_PER_CHUNK`` after each chunk, as the gate stage does
(streams.pipeline.gate_stage). It prints, per algorithm:

- *us/event*: wall time per event, admitting and forgetting;
- *forget us/event*: the share of it spent in ``forget_ids``;
- *forget reads*: the map entries the forget calls read (each one a RocksDB read and a
  decode in the worker), and per event;
- *remembered*, *forgotten*: the ids at the end.

``index`` is this release (passes over the index by day, ``<prefix>.id_days``);
``scan`` (with ``--baseline``) is the release before, :class:`ScanningGate`: passes over
every remembered id. Both must decide the same and keep the same ids, which is checked.
Maps in memory sort a pass's keys once when it starts (RocksDB seeks instead), which
both algorithms pay; ``--encoded`` holds the values as bytes, so every read decodes.

    .venv/bin/python -m bench.gate_cost --events 200000 --baseline
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from models import dedup
from models.dedup import SeenId
from models.events import Event, parse_event
from models.id_gate import PASS_CURSOR, SCAN_CURSOR, IdGate, Outcome
from models.keyed import Codec, KeyedMap, MemoryMaps
from models.policy import MetricPolicy
from streams.pipeline.gate_stage import FORGET_IDS_PER_CHUNK, GATE_CHUNK_EVENTS

V = TypeVar("V")
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


class ScanningGate(IdGate):
    """The id gate of the release before the index by day: no index is written, and a
    pass reads every remembered id in key order (its code, kept for comparison)."""

    def remember(self, event: Event, digest: bytes, source: str | None) -> None:
        self._ids.put(event.event_id, SeenId(digest, event.occurred_day))
        if source is not None:
            self.advance(source, event.occurred_at)

    @property
    def pass_under_way(self) -> bool:
        return self._forgetting.get(SCAN_CURSOR) is not None

    def forget_ids(self, limit: int) -> int:
        cursor = self._forgetting.get(SCAN_CURSOR)
        if limit < 1 or (cursor is None and not self._start_scan()):
            return 0
        cutoff = self._forgotten_before
        assert cutoff is not None
        seen = self._ids.items_after(cursor[0] if cursor else None, limit)
        forgotten = 0
        for event_id, entry in seen:
            if entry.day is None:
                day = self._undated_day()
                assert day is not None
                self._ids.put(event_id, SeenId(entry.digest, day))
            elif dedup.forgettable(entry.day, cutoff):
                self._ids.delete(event_id)
                forgotten += 1
        if len(seen) < limit:
            self._forgetting.delete(SCAN_CURSOR)
        else:
            self._forgetting.put(SCAN_CURSOR, (seen[-1][0],))
        self._count_forgotten(forgotten)
        return forgotten

    def _start_scan(self) -> bool:
        if not self._start_pass():  # stores the cutoff first, as before
            return False
        self._forgetting.delete(PASS_CURSOR)  # the index's cursor: not used here
        self._forgetting.put(SCAN_CURSOR, ())
        return True


@dataclass
class CountingMap:
    """A map that counts the entries ``items_after`` returned (what a pass reads)."""

    inner: Any
    reads: list[int]

    def get(self, key: str) -> Any:
        return self.inner.get(key)

    def put(self, key: str, value: Any) -> None:
        self.inner.put(key, value)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def items(self) -> Iterator[tuple[str, Any]]:
        return self.inner.items()  # type: ignore[no-any-return]

    def items_after(self, key: str | None, limit: int) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = self.inner.items_after(key, limit)
        self.reads[0] += len(found)
        return found


@dataclass
class CountingMaps:
    """Maps in memory whose walks are counted."""

    maps: MemoryMaps
    reads: list[int] = field(default_factory=lambda: [0])

    def open(self, name: str, codec: Codec[V]) -> KeyedMap[V]:
        return CountingMap(self.maps.open(name, codec), self.reads)


def make_stream(events: int, days: int, seed: int) -> list[Event]:
    """``events`` spends spread evenly over ``days``, in time order, random ids."""
    rng = random.Random(seed)
    step = dt.timedelta(days=days) / events
    stream = []
    for number in range(events):
        when = START + step * number
        raw = {
            "event_id": f"{rng.getrandbits(64):016x}",
            "type": "spend.recorded",
            "occurred_at": when.isoformat(),
            "data": {"channel": "organic", "amount": "10", "currency": "USD"},
        }
        stream.append(parse_event(raw))
    return stream


@dataclass
class Run:
    name: str
    seconds: float
    forget_seconds: float
    reads: int
    remembered: int
    forgotten: int
    outcomes: list[Outcome]


def run(gate_type: type[IdGate], stream: Sequence[Event], policy: MetricPolicy,
        encoded: bool) -> Run:  # fmt: skip
    maps = CountingMaps(MemoryMaps(encoded=encoded))
    gate = gate_type(policy, maps=maps, prefix="gate")
    maps.reads[0] = 0  # the gate's one look at its ids when made
    outcomes: list[Outcome] = []
    forget_seconds = 0.0
    started = time.perf_counter()
    for start in range(0, len(stream), GATE_CHUNK_EVENTS):
        outcomes.extend(gate.admit(event) for event in stream[start : start + GATE_CHUNK_EVENTS])
        before = time.perf_counter()
        gate.forget_ids(FORGET_IDS_PER_CHUNK)
        forget_seconds += time.perf_counter() - before
    seconds = time.perf_counter() - started
    remembered = sum(1 for _ in maps.maps.maps["gate.ids"].items())
    name = "scan" if gate_type is ScanningGate else "index"
    return Run(name, seconds, forget_seconds, maps.reads[0], remembered,
               gate.forgotten_count, outcomes)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events admitted")
    parser.add_argument("--days", type=int, default=90, help="days of event time they span")
    parser.add_argument("--horizon-days", type=int, default=14, help="the dedup horizon")
    parser.add_argument("--lateness-days", type=int, default=7, help="the allowed lateness")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also run the release before's algorithm (a pass over every id)",
    )
    parser.add_argument(
        "--encoded",
        action="store_true",
        help="hold values as bytes: every read decodes, as on disk",
    )
    args = parser.parse_args(argv)  # fmt: skip
    policy = MetricPolicy(
        lateness=dt.timedelta(days=args.lateness_days),
        dedup_horizon=dt.timedelta(days=args.horizon_days),
    )
    stream = make_stream(args.events, args.days, args.seed)
    runs = [run(IdGate, stream, policy, args.encoded)]
    if args.baseline:
        runs.append(run(ScanningGate, stream, policy, args.encoded))
        same = runs[0].outcomes == runs[1].outcomes and runs[0].remembered == runs[1].remembered
        if not same:
            raise SystemExit("the two algorithms decided or kept differently")
    print(f"{args.events:,} events over {args.days} days, horizon {args.horizon_days} days, "
          f"forget_ids({FORGET_IDS_PER_CHUNK}) every {GATE_CHUNK_EVENTS} events")  # fmt: skip
    print(f"{'':6} {'us/event':>9} {'forget us/event':>16} {'forget reads':>13} "
          f"{'reads/event':>12} {'remembered':>11} {'forgotten':>10}")  # fmt: skip
    per_event = 1e6 / len(stream)
    for done in runs:
        reads = f"{done.reads:13,} {done.reads / len(stream):12.2f}"
        kept = f"{done.remembered:11,} {done.forgotten:10,}"
        print(f"{done.name:6} {done.seconds * per_event:9.2f} "
              f"{done.forget_seconds * per_event:16.2f} {reads} {kept}")  # fmt: skip


if __name__ == "__main__":
    main()
