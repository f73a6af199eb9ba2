"""What the metrics are computed from, apart from how it was built.

``compute_points`` needs only daily buckets and a summary of the contract book on
one day. The ledger provides them live, the book summary from a timeline kept up to
date as contracts and churns arrive (models.timeline); :class:`StoredState` provides
them from a stored copy, the book summary by a scan of
its contracts and churns, so any date can be answered with no worker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from models.book import BookedContract, BookEntry, BookSummary, Churn, build_book, summarize
from models.buckets import BucketKey, DailyBuckets
from models.policy import MetricPolicy
from models.windows import Window

BucketDay = tuple[BucketKey, dt.date]


class MetricsSource(Protocol):
    @property
    def policy(self) -> MetricPolicy: ...

    @property
    def buckets(self) -> DailyBuckets: ...

    def book_summary(
        self, as_of: dt.date, windows: list[Window], churn_window: Window
    ) -> BookSummary:
        """The book on ``as_of`` and its movements: what ``models.book.summarize`` gives
        over the source's book."""
        ...


@dataclass
class StateDelta:
    """Changes since the last delta; ``full`` means: replace everything with this.

    ``part``: the state partition the changes belong to. A stored copy keeps each part
    apart, so a full delta replaces its own part and no other writer's."""

    full: bool = False
    buckets: dict[BucketDay, Decimal] = field(default_factory=dict)  # 0: gone
    contracts: dict[str, BookedContract] = field(default_factory=dict)
    churns: dict[str, Churn] = field(default_factory=dict)  # by event_id
    part: str = "0"

    def __bool__(self) -> bool:
        return self.full or bool(self.buckets or self.contracts or self.churns)


@dataclass
class StoredState:
    """A :class:`MetricsSource` made from stored buckets, contracts and churns."""

    policy: MetricPolicy
    buckets: DailyBuckets
    contracts: dict[str, BookedContract]
    churn_list: list[Churn]

    def booked_contracts(self) -> list[BookedContract]:
        return [self.contracts[contract_id] for contract_id in sorted(self.contracts)]

    def churns(self) -> list[Churn]:
        return list(self.churn_list)

    def book_entries(self) -> list[BookEntry]:
        return build_book(self.booked_contracts(), self.churns())

    def book_summary(
        self, as_of: dt.date, windows: list[Window], churn_window: Window
    ) -> BookSummary:
        """A scan of the book: a stored copy is read once per ``--as-of``, for any day."""
        return summarize(self.book_entries(), as_of, windows, churn_window)
