"""Daily buckets: per metric, segment and UTC day, an exact sum; a window's sum is
read from day-indexed sums in ``O(log days)``, whatever the history within retention."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal

from models.day_sums import DaySums, money_sums
from models.keyed import KeyedMap
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


def stored_key(key: BucketKey, day: dt.date) -> str:
    """A bucket day's key in a stored map: the bucket's names as a JSON list, and the day."""
    return json.dumps([*key, day.toordinal()], separators=(",", ":"))


def _from_stored_key(text: str) -> tuple[BucketKey, dt.date]:
    metric, dimension, value, ordinal = json.loads(text)
    return (metric, dimension, value), dt.date.fromordinal(ordinal)


class DailyBuckets:
    """Sums per (metric, segment, day). Adding a negative amount restates a day.

    ``stored``: a map that keeps every bucket day's amount (models.keyed), written as
    they change; buckets made on a map that holds amounts start from them."""

    def __init__(self, stored: KeyedMap[Decimal] | None = None) -> None:
        self._days: dict[BucketKey, dict[dt.date, Decimal]] = defaultdict(dict)
        self._touched: set[tuple[BucketKey, dt.date]] = set()
        # per bucket, the same amounts by day number: what window sums are read from
        self._sums: dict[BucketKey, DaySums[Decimal]] = {}
        self._stored = stored
        self._stored_keys: dict[tuple[BucketKey, dt.date], str] = {}  # made once per day
        if stored is not None:
            for text, amount in stored.items():
                key, day = _from_stored_key(text)
                self._days[key][day] = amount
                self._sums_of(key).add(day.toordinal(), amount)

    def _sums_of(self, key: BucketKey) -> DaySums[Decimal]:
        sums = self._sums.get(key)
        if sums is None:
            sums = self._sums[key] = money_sums()
        return sums

    def add(self, metric: str, segment: Segment, day: dt.date, amount: Decimal) -> None:
        key: BucketKey = (metric, *segment)
        days = self._days[key]
        self._touched.add((key, day))
        self._sums_of(key).add(day.toordinal(), amount)
        total = MONEY_CONTEXT.add(days.get(day, _ZERO), amount)
        if total == 0:
            days.pop(day, None)
        else:
            days[day] = total
        if self._stored is not None:
            name = self._stored_keys.get((key, day))
            if name is None:
                name = self._stored_keys[(key, day)] = stored_key(key, day)
            if total == 0:
                self._stored.delete(name)
                del self._stored_keys[(key, day)]
            else:
                self._stored.put(name, total)

    def total(self, metric: str, segment: Segment, window: Window) -> Decimal:
        """The sum over the window's days: two prefix sums over day numbers."""
        sums = self._sums.get((metric, *segment))
        if sums is None:
            return Decimal(0)
        return sums.between(window.first_day.toordinal(), window.last_day.toordinal())

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
                self._sums[key].add(day.toordinal(), days.pop(day).copy_negate())
                self._touched.add((key, day))
                if self._stored is not None:
                    self._stored.delete(stored_key(key, day))
                    self._stored_keys.pop((key, day), None)

    def take_touched(self) -> dict[tuple[BucketKey, dt.date], Decimal]:
        """Every (bucket, day) changed since the last call, with its amount now (0: gone)."""
        touched = {
            (key, day): self._days.get(key, {}).get(day, Decimal(0)) for key, day in self._touched
        }
        self._touched.clear()
        return touched

    def as_dict(self) -> dict[BucketKey, dict[dt.date, Decimal]]:
        return {key: dict(days) for key, days in self._days.items() if days}
