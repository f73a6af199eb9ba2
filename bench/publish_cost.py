"""What one publish's computation costs as history grows: pure domain, no I/O.

Loads a multi-year history (the scale benchmark's workload, in event-time order) into
a :class:`models.ledger.Ledger` and, at 1/4, 1/2 and all of M events, times what a
publish computes, as of the day of the latest event: the retention prune,
``compute_points`` for every window, segment and metric, and the state delta for the
stored copy (``Ledger.take_delta``). Each figure is the median of ``--rounds``
publishes, each after the next ``--between`` events of the history were applied (so
some buckets and the book changed since the last one, as between two live publishes).
A last row, ``live``, goes on past the history as a live worker does: each publish
is as of the day after the history, after ``--between`` events of that day. Each part
is wall time; ``cpu`` is the publishing thread's own CPU time for the whole
publish (``time.thread_time``). The ratio is to the 1/4 figure of the same run: 1.0
means the cost does not grow with history.

``--contend`` runs a second thread that applies events to a ledger of its own all the
while, as the worker's event loop validates and applies events while a publish is
computed on its thread: the wall time then includes the waits for the interpreter lock,
and its gap to ``cpu`` shows them.

    .venv/bin/python -m bench.publish_cost                 # M = 400,000, about a minute
    .venv/bin/python -m bench.publish_cost --events 100000
    .venv/bin/python -m bench.publish_cost --events 100000 --contend
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bench.workload import Record, Workload
from models.events import parse_canonical_event
from models.ledger import Ledger
from models.policy import MetricPolicy
from models.series import compute_points

HISTORY_END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
STAGES = ((1, 4), (1, 2), (1, 1))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publish_cost",
        description="Time a publish's computation at 1/4, 1/2 and all of M events of "
        "history (pure domain, no broker).",
    )
    parser.add_argument("--events", type=int, default=400_000, help="M (400,000)")
    parser.add_argument("--years", type=float, default=3.0, help="history span (3)")
    parser.add_argument("--rounds", type=int, default=9, help="publishes timed per stage (9)")
    parser.add_argument(
        "--between", type=int, default=300, help="events applied before each publish (300)"
    )
    parser.add_argument("--seed", type=int, default=7, help="workload seed (7)")
    parser.add_argument(
        "--contend",
        action="store_true",
        help="a second thread applies events meanwhile, as the worker's loop does",
    )
    return parser


def apply(ledger: Ledger, records: Iterator[Record], count: int) -> int:
    applied = 0
    for record in records:
        ledger.apply(parse_canonical_event(record.value))
        applied += 1
        if applied == count:
            break
    return applied


@dataclass(frozen=True)
class PublishCost:
    """Medians over a stage's publishes, in milliseconds: each part's wall time, and the
    publishing thread's CPU time for the whole publish."""

    prune_ms: float
    compute_ms: float
    delta_ms: float
    cpu_ms: float

    @property
    def publish_ms(self) -> float:
        return self.prune_ms + self.compute_ms + self.delta_ms


def time_publishes(
    ledger: Ledger,
    records: Iterator[Record],
    rounds: int,
    between: int,
    as_of: dt.date | None = None,
) -> tuple[PublishCost, int]:
    """The median cost over ``rounds`` publishes; events applied.

    Each publish is as of ``as_of`` or, if None, the day of the latest event, as a live
    publish is as of today with today's events: as of the history's end, the early
    stages' windows would be empty and cost nothing."""
    assert ledger.watermark is not None
    day = as_of or ledger.watermark.date()
    compute_points(ledger, day)  # the first publish after a load: not timed
    ledger.take_delta()
    parts: list[tuple[float, float, float, float]] = []
    applied = 0
    for _ in range(rounds):
        applied += apply(ledger, records, between)
        assert ledger.watermark is not None
        day = as_of or ledger.watermark.date()
        cpu_started, started = time.thread_time(), time.perf_counter()
        ledger.prune(day)
        pruned = time.perf_counter()
        compute_points(ledger, day)
        computed = time.perf_counter()
        ledger.take_delta()
        ended = time.perf_counter()
        cpu = time.thread_time() - cpu_started
        parts.append((pruned - started, computed - pruned, ended - computed, cpu))
    medians = [1000 * statistics.median(part[i] for part in parts) for i in range(4)]
    return PublishCost(*medians), applied


def live_records(workload: Workload, start: dt.datetime) -> Iterator[Record]:
    """The live workload's events from ``start`` on, a funnel step a second."""
    step = 0
    while True:
        yield from workload.live(start + dt.timedelta(seconds=step))
        step += 1


class Contender:
    """A thread that applies events to a ledger of its own until stopped."""

    def __init__(self, values: list[bytes]) -> None:
        self.values = values
        self.applied = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="contender", daemon=True)

    def _run(self) -> None:
        ledger = Ledger(MetricPolicy())
        while not self._stop.is_set():
            ledger.apply(parse_canonical_event(self.values[self.applied % len(self.values)]))
            self.applied += 1

    def __enter__(self) -> Contender:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def print_row(label: str, ledger: Ledger, cost: PublishCost, first: float, note: str) -> None:
    print(
        f"  {label}  ledger {ledger.accepted_count:>9,}  "
        f"prune {cost.prune_ms:6.1f} ms  compute {cost.compute_ms:6.1f} ms  "
        f"delta {cost.delta_ms:6.1f} ms  publish {cost.publish_ms:6.1f} ms  "
        f"cpu {cost.cpu_ms:6.1f} ms  ratio to 1/4 {cost.publish_ms / first:4.2f}x  {note}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.events < 1_000 or args.rounds < 1 or args.between < 1:
        build_parser().error("--events at least 1,000; --rounds and --between positive")
    workload = Workload(args.seed, HISTORY_END, round(args.years * 365))
    records = workload.stream(args.events + len(STAGES) * args.rounds * args.between)
    ledger = Ledger(MetricPolicy())
    print("revpulse publish cost (pure domain: prune + compute_points + take_delta, no I/O)")
    contend = " --contend" if args.contend else ""
    print(f"  command   python -m bench.publish_cost --events {args.events}{contend}")
    print(f"  history   M={args.events:,} events over {args.years:g} years (seed {args.seed})")
    if args.contend:
        print("  contend   a second thread applies events all the while (wall includes the "
              "waits for the interpreter lock)")  # fmt: skip
    contender_events = [r.value for r in Workload(args.seed + 1, HISTORY_END, 30).stream(5_000)]
    loaded, first = 0, 0.0
    for numerator, denominator in STAGES:
        target = args.events * numerator // denominator
        started = time.perf_counter()
        loaded += apply(ledger, records, target - loaded)
        load_seconds = time.perf_counter() - started
        with Contender(contender_events) if args.contend else contextlib.nullcontext():
            cost, applied = time_publishes(ledger, records, args.rounds, args.between)
        loaded += applied
        first = first or cost.publish_ms
        label = f"{numerator}/{denominator} of M"
        print_row(label, ledger, cost, first, f"(loaded in {load_seconds:,.0f} s)")
    # then live: today's events, each publish as of today, as a worker past its backfill
    live_day = HISTORY_END + dt.timedelta(days=1)
    with Contender(contender_events) if args.contend else contextlib.nullcontext():
        cost, _ = time_publishes(
            ledger, live_records(workload, live_day), args.rounds, args.between, live_day.date()
        )
    print_row("live    ", ledger, cost, first, "(events of the day after, as of that day)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
