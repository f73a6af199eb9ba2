"""Where what the entities add up to meets: the daily buckets and the book's sums.

Each partition of the entity state (models.entities) sends on the changes its inputs
made: to the daily buckets (under the sender's channel), to the book's sums over days,
and the sender channels it saw. :class:`Aggregate` adds them up in the order they
arrive, admits channels in that order (models.channels: past the cap, which channels
keep a label of their own depends on it), and is what metric points are computed
from (models.series.compute_points reads its buckets and its book summary).

What it holds grows with days and segments, not with entities or events.
"""

from __future__ import annotations

import datetime as dt

from models.book import BookSummary
from models.buckets import DailyBuckets
from models.channels import ChannelAdmission
from models.entities import Emitted
from models.keyed import COUNT, TEXTS, MemoryMaps, StateMaps
from models.ledger_codecs import DAY_AMOUNTS, INSTANT
from models.policy import MetricPolicy
from models.timeline import CHURN_WINDOW_DAYS
from models.timeline_sums import TimelineSums
from models.windows import Window

WATERMARK = "watermark"
ACCEPTED = "accepted"
ADMITTED = "admitted"


class Aggregate:
    """The daily buckets and the book's sums, from the entities' changes. Pure."""

    def __init__(self, policy: MetricPolicy, maps: StateMaps | None = None) -> None:
        self.policy = policy
        maps = MemoryMaps() if maps is None else maps
        self.buckets = DailyBuckets(maps.open("aggregate.bucket_days", DAY_AMOUNTS))
        self._sums = TimelineSums(CHURN_WINDOW_DAYS, maps)
        self._marks = maps.open("aggregate.marks", INSTANT)
        self._counts = maps.open("aggregate.counts", COUNT)
        self._admitted = maps.open("aggregate.channels", TEXTS)
        self._channels = ChannelAdmission.for_policy(policy, self._admitted.get(ADMITTED) or ())
        self.watermark: dt.datetime | None = self._marks.get(WATERMARK)
        self.accepted_count: int = self._counts.get(ACCEPTED) or 0

    def apply(self, emitted: Emitted) -> None:
        """Add one partition's changes: channels first, so each change counts under the
        label its channel has once admitted."""
        channels = self._channels
        admitted = len(channels.admitted)
        for channel in emitted.channels:
            channels.admit(channel)
        for (metric, segment, day), amount in emitted.buckets.items():
            if segment[0] == "channel":
                segment = ("channel", channels.admit(segment[1]))
            self.buckets.add(metric, segment, day, amount)
        if len(channels.admitted) != admitted:
            self._admitted.put(ADMITTED, channels.admitted)
        for (name, ordinal), change in emitted.sums.items():
            self._sums.add(name, ordinal, change)
        if emitted.accepted:
            self.accepted_count += emitted.accepted
            self._counts.put(ACCEPTED, self.accepted_count)
        latest = emitted.latest
        if latest is not None and (self.watermark is None or latest > self.watermark):
            self.watermark = latest
            self._marks.put(WATERMARK, latest)

    @property
    def admitted_channels(self) -> tuple[str, ...]:
        return self._channels.admitted

    def take_overflowed_channels(self) -> list[str]:
        return self._channels.take_overflowed()

    def book_summary(
        self, as_of: dt.date, windows: list[Window], churn_window: Window
    ) -> BookSummary:
        """The book on ``as_of`` from the sums: ``O(windows x log days)``."""
        return self._sums.summary(as_of, windows, churn_window)

    def store_changes(self) -> None:
        """Write the changed bucket days to the maps (before they are flushed)."""
        self.buckets.store_changes()

    def prune(self, today: dt.date) -> None:
        """Drop daily buckets past the retention."""
        self.buckets.prune(today - dt.timedelta(days=self.policy.retention_days))
