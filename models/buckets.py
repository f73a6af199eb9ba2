"""Daily buckets: per metric, segment and UTC day, an exact running sum."""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from decimal import Decimal

from models.money import MONEY_CONTEXT
from models.windows import Window

# (metric, dimension, value); dimension is "all", "origin" or "channel"
BucketKey = tuple[str, str, str]
Segment = tuple[str, str]
ALL: Segment = ("all", "all")
_ZERO = Decimal(0)


def segments_of(origin: str | None, channel: str | None) -> list[Segment]:
    """The segments one fact counts in: all, plus its origin and channel where it has them."""
    found = [ALL]
    if origin is not None:
        found.append(("origin", origin))
    if channel is not None:
        found.append(("channel", channel))
    return found


class DailyBuckets:
    """Sums per (metric, segment, day). Adding a negative amount restates a day."""

    def __init__(self) -> None:
        self._days: dict[BucketKey, dict[dt.date, Decimal]] = defaultdict(dict)
        self._touched: set[tuple[BucketKey, dt.date]] = set()
        # per bucket, its days in order and running totals; rebuilt after a change
        self._prefix: dict[BucketKey, tuple[list[dt.date], list[Decimal]]] = {}

    def add(self, metric: str, segment: Segment, day: dt.date, amount: Decimal) -> None:
        key: BucketKey = (metric, *segment)
        days = self._days[key]
        self._touched.add((key, day))
        self._prefix.pop(key, None)
        total = MONEY_CONTEXT.add(days.get(day, _ZERO), amount)
        if total == 0:
            days.pop(day, None)
        else:
            days[day] = total

    def total(self, metric: str, segment: Segment, window: Window) -> Decimal:
        """The sum over the window's days: two binary searches in running totals."""
        key: BucketKey = (metric, *segment)
        prefix = self._prefix.get(key)
        if prefix is None:
            days = sorted(self._days.get(key, {}).items())
            running = [Decimal(0)]
            for _day, amount in days:
                running.append(MONEY_CONTEXT.add(running[-1], amount))
            prefix = ([day for day, _amount in days], running)
            self._prefix[key] = prefix
        ordered_days, running = prefix
        first = bisect.bisect_left(ordered_days, window.first_day)
        after_last = bisect.bisect_right(ordered_days, window.last_day)
        return MONEY_CONTEXT.subtract(running[after_last], running[first])

    def segments(self, metric: str) -> set[Segment]:
        """Segments with at least one non-zero day (a restated-away segment is gone)."""
        return {
            (dim, value)
            for (name, dim, value), days in self._days.items()
            if name == metric and days
        }

    def prune(self, before_day: dt.date) -> None:
        """Forget every day before ``before_day`` (the retention limit)."""
        for key, days in self._days.items():
            for day in [day for day in days if day < before_day]:
                del days[day]
                self._touched.add((key, day))
                self._prefix.pop(key, None)

    def take_touched(self) -> dict[tuple[BucketKey, dt.date], Decimal]:
        """Every (bucket, day) changed since the last call, with its amount now (0: gone)."""
        touched = {
            (key, day): self._days.get(key, {}).get(day, Decimal(0)) for key, day in self._touched
        }
        self._touched.clear()
        return touched

    def as_dict(self) -> dict[BucketKey, dict[dt.date, Decimal]]:
        return {key: dict(days) for key, days in self._days.items() if days}
