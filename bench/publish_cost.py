"""What one publish's computation costs as history grows: pure domain, no I/O.

Loads a multi-year history (the scale benchmark's workload, in event-time order) into
a :class:`models.ledger.Ledger` and, at 1/4, 1/2 and all of M events, times what a
publish computes, as of the day of the latest event: the retention prune and
``compute_points`` for every window, segment and metric. Each figure is the median of
``--rounds`` publishes, each after the next ``--between`` events of the history were
applied (so some buckets and the book changed since the last one, as between two live
publishes). The ratio is to the 1/4 figure of
the same run: 1.0 means the cost does not grow with history.

    .venv/bin/python -m bench.publish_cost                 # M = 400,000, about a minute
    .venv/bin/python -m bench.publish_cost --events 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Iterator, Sequence

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
    return parser


def apply(ledger: Ledger, records: Iterator[Record], count: int) -> int:
    applied = 0
    for record in records:
        ledger.apply(parse_canonical_event(record.value))
        applied += 1
        if applied == count:
            break
    return applied


def time_publishes(
    ledger: Ledger, records: Iterator[Record], rounds: int, between: int
) -> tuple[float, float, int]:
    """Median prune and compute milliseconds over ``rounds`` publishes; events applied.

    Each publish is as of the day of the latest event, as a live publish is as of today
    with today's events: as of the history's end, the early stages' windows would be
    empty and cost nothing."""
    assert ledger.watermark is not None
    day = ledger.watermark.date()
    compute_points(ledger, day)  # the first publish after a load: not timed
    prunes, computes, applied = [], [], 0
    for _ in range(rounds):
        applied += apply(ledger, records, between)
        assert ledger.watermark is not None
        day = ledger.watermark.date()
        started = time.perf_counter()
        ledger.prune(day)
        pruned = time.perf_counter()
        compute_points(ledger, day)
        prunes.append(pruned - started)
        computes.append(time.perf_counter() - pruned)
    return 1000 * statistics.median(prunes), 1000 * statistics.median(computes), applied


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.events < 1_000 or args.rounds < 1 or args.between < 1:
        build_parser().error("--events at least 1,000; --rounds and --between positive")
    workload = Workload(args.seed, HISTORY_END, round(args.years * 365))
    records = workload.stream(args.events + len(STAGES) * args.rounds * args.between)
    ledger = Ledger(MetricPolicy())
    print("revpulse publish cost (pure domain: prune + compute_points, no I/O)")
    print(f"  command   python -m bench.publish_cost --events {args.events}")
    print(f"  history   M={args.events:,} events over {args.years:g} years (seed {args.seed})")
    loaded, first = 0, None
    for numerator, denominator in STAGES:
        target = args.events * numerator // denominator
        started = time.perf_counter()
        loaded += apply(ledger, records, target - loaded)
        load_seconds = time.perf_counter() - started
        prune_ms, compute_ms, applied = time_publishes(ledger, records, args.rounds, args.between)
        loaded += applied
        total_ms = prune_ms + compute_ms
        first = first or total_ms
        print(
            f"  {numerator}/{denominator} of M  ledger {ledger.accepted_count:>9,}  "
            f"prune {prune_ms:6.1f} ms  compute {compute_ms:6.1f} ms  "
            f"publish {total_ms:6.1f} ms  ratio to 1/4 {total_ms / first:4.2f}x  "
            f"(loaded in {load_seconds:,.0f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
