"""Daily buckets: per metric, segment and UTC day, an exact sum; a window's sum is
read from day-indexed sums (models.day_sums), whatever the history within retention."""

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


# one stored day: every bucket's amount on it, sorted: ((metric, dimension, value), amount)
DayAmounts = tuple[tuple[BucketKey, Decimal], ...]


def _legacy_key(text: str) -> tuple[BucketKey, dt.date]:
    """A bucket day's key as the first state-table release stored it, one per bucket."""
    metric, dimension, value, ordinal = json.loads(text)
    return (metric, dimension, value), dt.date.fromordinal(ordinal)


class DailyBuckets:
    """Sums per (metric, segment, day). Adding a negative amount restates a day.

    ``stored``: a map that keeps each day's amounts as one entry (keyed by the day's
    ordinal), written by :meth:`store_changes`; buckets made on a map that holds days
    start from them. ``legacy``: a map of one entry per bucket day (the first release
    of the stored state); what it holds is moved into ``stored`` and deleted from it.
    """

    def __init__(
        self,
        stored: KeyedMap[DayAmounts] | None = None,
        legacy: KeyedMap[Decimal] | None = None,
    ) -> None:
        self._days: dict[BucketKey, dict[dt.date, Decimal]] = defaultdict(dict)
        self._touched: set[tuple[BucketKey, dt.date]] = set()
        self._unstored: set[dt.date] = set()  # days changed since store_changes
        self._no_day_before: dt.date = dt.date.max  # no amount is on an earlier day
        # the latest retention limit a prune was given: an amount on an earlier day is
        # not kept (the next prune would forget it; no window reaches it)
        self._kept_from: dt.date = dt.date.min
        # per day, how many buckets hold an amount on it: what a prune looks through
        self._day_keys: dict[dt.date, int] = {}
        # per bucket, the same amounts by day number: what window sums are read from
        self._sums: dict[BucketKey, DaySums[Decimal]] = {}
        self._stored = stored
        if stored is not None:
            for text, amounts in stored.items():
                day = dt.date.fromordinal(int(text))
                self._no_day_before = min(self._no_day_before, day)
                for key, amount in amounts:
                    self._days[key][day] = amount
                    self._day_keys[day] = self._day_keys.get(day, 0) + 1
                    self._sums_of(key).add(day.toordinal(), amount)
        if legacy is not None:
            for text, amount in list(legacy.items()):
                key, day = _legacy_key(text)
                self.add(key[0], (key[1], key[2]), day, amount)
                legacy.delete(text)
            self._touched.clear()  # nothing changed that a stored copy does not hold

    def _sums_of(self, key: BucketKey) -> DaySums[Decimal]:
        sums = self._sums.get(key)
        if sums is None:
            sums = self._sums[key] = money_sums()
        return sums

    def add(self, metric: str, segment: Segment, day: dt.date, amount: Decimal) -> None:
        """Add ``amount`` to the bucket's day; a day before the last prune's limit is
        past the retention, and is not kept: a backfill of history older than the
        retention then costs no bucket day stored, published and pruned again."""
        if day < self._kept_from:
            return
        key: BucketKey = (metric, *segment)
        days = self._days[key]
        self._touched.add((key, day))
        self._unstored.add(day)
        if day < self._no_day_before:
            self._no_day_before = day
        self._sums_of(key).add(day.toordinal(), amount)
        held = days.get(day)
        total = MONEY_CONTEXT.add(_ZERO if held is None else held, amount)
        if total == 0:
            if held is not None:
                del days[day]
                self._drop_day_key(day)
        else:
            days[day] = total
            if held is None:
                self._day_keys[day] = self._day_keys.get(day, 0) + 1

    def _drop_day_key(self, day: dt.date) -> None:
        left = self._day_keys[day] - 1
        if left:
            self._day_keys[day] = left
        else:
            del self._day_keys[day]

    def store_changes(self) -> None:
        """Write every day changed since the last call to the stored map, one entry
        per day (a day with no amount left is deleted)."""
        if self._stored is None:
            self._unstored.clear()
            return
        for day in self._unstored:
            amounts = tuple(
                sorted((key, days[day]) for key, days in self._days.items() if day in days)
            )
            if amounts:
                self._stored.put(str(day.toordinal()), amounts)
            else:
                self._stored.delete(str(day.toordinal()))
        self._unstored.clear()

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

    def through(self, metric: str, segment: Segment, day: dt.date) -> Decimal:
        """The sum over every day up to and including ``day``: a window's total is the
        one through its last day less the one through the day before its first."""
        sums = self._sums.get((metric, *segment))
        if sums is None:
            return Decimal(0)
        return sums.through(day.toordinal())

    def prune(self, before_day: dt.date) -> int:
        """Forget every day before ``before_day`` (the retention limit); returns how many
        days it forgot. Nothing is looked at unless a day may be that old (the limit
        moved, or a day before it was added), and then only the days held, and the
        buckets of the days forgotten: not every bucket day."""
        # the limit follows the metrics clock, which does not go back
        self._kept_from = max(self._kept_from, before_day)
        if before_day <= self._no_day_before:
            return 0
        self._no_day_before = before_day
        old = [day for day in self._day_keys if day < before_day]
        for day in old:
            del self._day_keys[day]
            ordinal = day.toordinal()
            for key, days in self._days.items():
                amount = days.pop(day, None)
                if amount is not None:
                    self._sums[key].add(ordinal, amount.copy_negate())
                    self._touched.add((key, day))
            self._unstored.add(day)
        return len(old)

    @property
    def day_count(self) -> int:
        """Days with an amount in at least one bucket: the retention bounds them."""
        return len(self._day_keys)

    def take_touched(self) -> dict[tuple[BucketKey, dt.date], Decimal]:
        """Every (bucket, day) changed since the last call, with its amount now (0: gone)."""
        touched = {
            (key, day): self._days.get(key, {}).get(day, Decimal(0)) for key, day in self._touched
        }
        self._touched.clear()
        return touched

    def as_dict(self) -> dict[BucketKey, dict[dt.date, Decimal]]:
        return {key: dict(days) for key, days in self._days.items() if days}
