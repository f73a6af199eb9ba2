"""What one publish costs for the contract book: the timeline (index) against the scan.

Pure domain, no I/O. For books of 10,000, 100,000 and 400,000 contracts (spread over
six years of starts, a quarter of the accounts with a churn), it times:

- *index*: ``compute_points`` on a source whose book summary comes from a
  :class:`models.timeline.BookTimeline` (what a live ``Ledger`` publishes from);
- *scan*: ``compute_points`` on a :class:`models.state.StoredState`, which rebuilds the
  book and scans it (what every publish did before, once a contract or churn changed);
- *index after 1k*: the same right after 1,000 new contracts, so the timeline's
  pending changes are folded in within the figure (a live publish between events);
- *update*: the mean cost of one change to the timeline (a contract put, a churn),
  the fold of the pending changes into the day sums included.

Daily buckets are empty in both, so the figures are the book's share of a publish.
Both sources give equal points, checked on each size. Runs in about a minute:

    .venv/bin/python -m bench.book_cost
    .venv/bin/python -m bench.book_cost --sizes 10000 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from models.book import BookedContract, BookSummary, Churn
from models.buckets import DailyBuckets
from models.policy import MetricPolicy
from models.series import compute_points
from models.state import StoredState
from models.timeline import BookTimeline
from models.windows import Window

AS_OF = dt.date(2026, 6, 30)
FIRST_START = dt.date(2020, 7, 1)
START_SPAN_DAYS = 6 * 365 + 90  # some contracts start after AS_OF: contracted ARR


@dataclass
class IndexedState(StoredState):
    """A stored state whose book summary comes from a timeline, as the live ledger's does."""

    timeline: BookTimeline | None = None

    def book_summary(
        self, as_of: dt.date, windows: list[Window], churn_window: Window
    ) -> BookSummary:
        assert self.timeline is not None
        return self.timeline.summary(as_of, windows, churn_window)


def make_book(contracts: int, seed: int) -> tuple[list[BookedContract], list[Churn]]:
    """About 2.5 contracts per account; a quarter of accounts churn (half of those one
    contract, half the whole account), on a day that may fall before, in or after terms."""
    rng = random.Random(seed)
    accounts = max(1, contracts * 2 // 5)
    book = []
    for index in range(contracts):
        start = FIRST_START + dt.timedelta(days=rng.randrange(START_SPAN_DAYS))
        cents = rng.randrange(100_000, 50_000_000)
        book.append(
            BookedContract(
                f"C{index:07d}",
                f"A{rng.randrange(accounts):07d}",
                rng.choice(("new", "new", "renewal", "expansion")),
                start,
                rng.choice((12, 12, 24, 36)),
                Decimal(cents).scaleb(-2).quantize(Decimal("0.000001")),
            )
        )
    churns = []
    for account in rng.sample(range(accounts), accounts // 4):
        day = FIRST_START + dt.timedelta(days=rng.randrange(START_SPAN_DAYS))
        contract_id = None
        if rng.random() < 0.5:
            contract_id = f"C{rng.randrange(contracts):07d}"
        churns.append(Churn(f"A{account:07d}", contract_id, day))
    return book, churns


def _median_seconds(run: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@dataclass(frozen=True)
class BookCost:
    contracts: int
    churns: int
    update_us: float  # mean per contract put or churn, building the timeline
    index_ms: float
    index_after_changes_ms: float
    scan_ms: float
    timeline_entries: int

    @property
    def ratio(self) -> float:
        return self.scan_ms / self.index_ms


def measure(contracts: int, repeat: int, seed: int) -> BookCost:
    book, churns = make_book(contracts, seed)
    policy = MetricPolicy()
    stored = StoredState(policy, DailyBuckets(), {c.contract_id: c for c in book}, churns)
    timeline = BookTimeline()
    started = time.perf_counter()
    for contract in book:
        timeline.put_contract(contract)
    for churn in churns:
        timeline.add_churn(churn)
    _ = timeline.size  # folds the pending changes in
    update_seconds = (time.perf_counter() - started) / (len(book) + len(churns))
    indexed = IndexedState(policy, DailyBuckets(), {}, [], timeline)
    if compute_points(indexed, AS_OF) != compute_points(stored, AS_OF):
        raise RuntimeError(f"index and scan differ for {contracts} contracts")
    index_seconds = _median_seconds(lambda: compute_points(indexed, AS_OF), repeat * 20)
    scan_seconds = _median_seconds(lambda: compute_points(stored, AS_OF), repeat)
    entries = timeline.size
    after_changes = []
    for batch in range(5):
        for index in range(1_000):
            start = AS_OF + dt.timedelta(days=index % 30)
            timeline.put_contract(
                BookedContract(f"L{batch}-{index}", f"L{index}", "new", start, 12, Decimal(1200))
            )
        after_changes.append(_median_seconds(lambda: compute_points(indexed, AS_OF), 1))
    return BookCost(
        contracts=contracts,
        churns=len(churns),
        update_us=update_seconds * 1e6,
        index_ms=index_seconds * 1e3,
        index_after_changes_ms=statistics.median(after_changes) * 1e3,
        scan_ms=scan_seconds * 1e3,
        timeline_entries=entries,
    )


def _table(rows: Sequence[BookCost]) -> str:
    lines = [
        f"{'contracts':>10} {'churns':>8} {'index ms':>9} {'after 1k':>9} {'scan ms':>9} "
        f"{'scan/index':>10} {'update us':>10} {'entries':>11}"
    ]
    for row in rows:
        lines.append(
            f"{row.contracts:>10,} {row.churns:>8,} {row.index_ms:>9.3f} "
            f"{row.index_after_changes_ms:>9.3f} {row.scan_ms:>9.1f} "
            f"{row.ratio:>9.0f}x {row.update_us:>10.1f} {row.timeline_entries:>11,}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.book_cost",
        description="compute_points for the contract book: timeline (index) against scan",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 400_000])
    parser.add_argument("--repeat", type=int, default=3, help="scan runs per size (median)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args.repeat, args.seed))
        print(_table(rows[-1:]).splitlines()[-1] if len(rows) > 1 else _table(rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
