"""Bucket days kept in a map: one entry per day, written when the ledger stores its
changes, and the first release's one entry per bucket day moved over."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from models.buckets import ALL, DailyBuckets, DayAmounts
from models.keyed import MONEY, EncodedMap
from models.ledger_codecs import DAY_AMOUNTS
from models.windows import Window

MARCH_1, MARCH_2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
MARCH = Window("march", MARCH_1, dt.date(2026, 3, 31))


def test_a_day_is_one_entry_written_when_changes_are_stored() -> None:
    stored: EncodedMap[DayAmounts] = EncodedMap(DAY_AMOUNTS)
    buckets = DailyBuckets(stored)
    buckets.add("spend", ALL, MARCH_1, Decimal("10.50"))
    buckets.add("spend", ("channel", "ads"), MARCH_1, Decimal("10.50"))
    buckets.add("spend", ALL, MARCH_2, Decimal("1"))
    assert len(stored) == 0  # kept in memory until stored
    buckets.store_changes()
    assert dict(stored.items()) == {
        str(MARCH_1.toordinal()): (
            (("spend", "all", "all"), Decimal("10.50")),
            (("spend", "channel", "ads"), Decimal("10.50")),
        ),
        str(MARCH_2.toordinal()): ((("spend", "all", "all"), Decimal("1")),),
    }
    buckets.add("spend", ALL, MARCH_2, Decimal("-1"))  # the day has nothing left
    buckets.store_changes()
    assert str(MARCH_2.toordinal()) not in dict(stored.items())
    again = DailyBuckets(stored)
    assert again.total("spend", ALL, MARCH) == Decimal("10.50")
    assert again.segments("spend") == {ALL, ("channel", "ads")}


def test_pruned_days_leave_the_stored_map() -> None:
    stored: EncodedMap[DayAmounts] = EncodedMap(DAY_AMOUNTS)
    buckets = DailyBuckets(stored)
    buckets.add("spend", ALL, MARCH_1, Decimal("3"))
    buckets.add("spend", ALL, MARCH_2, Decimal("4"))
    buckets.store_changes()
    buckets.prune(before_day=MARCH_2)
    buckets.store_changes()
    assert [key for key, _ in stored.items()] == [str(MARCH_2.toordinal())]


def test_one_entry_per_bucket_day_of_the_first_release_is_moved_over() -> None:
    legacy: EncodedMap[Decimal] = EncodedMap(MONEY)
    legacy.put(f'["spend","all","all",{MARCH_1.toordinal()}]', Decimal("2.25"))
    legacy.put(f'["spend","channel","ads",{MARCH_1.toordinal()}]', Decimal("2.25"))
    stored: EncodedMap[DayAmounts] = EncodedMap(DAY_AMOUNTS)
    buckets = DailyBuckets(stored, legacy=legacy)
    assert buckets.total("spend", ("channel", "ads"), MARCH) == Decimal("2.25")
    assert buckets.take_touched() == {}  # a stored copy holds these already
    buckets.store_changes()
    assert len(legacy) == 0
    assert DailyBuckets(stored).as_dict() == buckets.as_dict()


def test_a_day_added_before_the_last_prune_limit_is_not_kept() -> None:
    """A backfill of days past the retention: nothing held, stored or sent to a copy."""
    stored: EncodedMap[DayAmounts] = EncodedMap(DAY_AMOUNTS)
    buckets = DailyBuckets(stored)
    buckets.add("spend", ALL, MARCH_2, Decimal("4"))
    buckets.prune(before_day=MARCH_2)
    buckets.store_changes()
    buckets.take_touched()
    buckets.add("spend", ALL, MARCH_1, Decimal("3"))  # older than the limit
    buckets.add("leads", ("channel", "ads"), MARCH_1, Decimal("1"))
    assert buckets.as_dict() == {("spend", "all", "all"): {MARCH_2: Decimal("4")}}
    assert buckets.take_touched() == {}
    assert buckets.segments("leads") == set()
    assert buckets.total("spend", ALL, MARCH) == Decimal("4")
    buckets.store_changes()
    assert [key for key, _ in stored.items()] == [str(MARCH_2.toordinal())]
    assert buckets.prune(before_day=MARCH_2) == 0
    buckets.add("spend", ALL, MARCH_2, Decimal("1"))  # the limit's own day is kept
    assert buckets.total("spend", ALL, MARCH) == Decimal("5")


def test_before_any_prune_every_day_is_kept_and_the_first_prune_forgets_it() -> None:
    buckets = DailyBuckets()
    buckets.add("spend", ALL, MARCH_1, Decimal("3"))
    assert buckets.total("spend", ALL, MARCH) == Decimal("3")
    assert buckets.prune(before_day=MARCH_2) == 1
    assert buckets.as_dict() == {}


MARCH_3, MARCH_4 = dt.date(2026, 3, 3), dt.date(2026, 3, 4)


def test_a_prune_forgets_only_when_a_day_can_be_old_and_says_how_many_days() -> None:
    buckets = DailyBuckets()
    buckets.add("spend", ALL, MARCH_1, Decimal("1"))
    buckets.add("leads", ALL, MARCH_1, Decimal("1"))
    buckets.add("spend", ALL, MARCH_3, Decimal("3"))
    assert buckets.day_count == 2
    assert buckets.prune(before_day=MARCH_2) == 1  # March 1, in both its buckets
    assert buckets.day_count == 1
    buckets.take_touched()
    buckets.add("spend", ALL, MARCH_4, Decimal("4"))  # a recent day
    assert buckets.prune(before_day=MARCH_2) == 0  # same limit, nothing older added
    assert buckets.take_touched() == {(("spend", "all", "all"), MARCH_4): Decimal("4")}
    assert buckets.prune(before_day=MARCH_4) == 1  # the limit moved: March 3 goes
    assert buckets.as_dict() == {("spend", "all", "all"): {MARCH_4: Decimal("4")}}
    assert buckets.take_touched() == {(("spend", "all", "all"), MARCH_3): Decimal(0)}
    assert buckets.total("spend", ALL, MARCH) == Decimal("4")
    assert buckets.total("leads", ALL, MARCH) == Decimal(0)


def test_a_day_restated_to_nothing_is_not_looked_at_by_a_prune() -> None:
    stored: EncodedMap[DayAmounts] = EncodedMap(DAY_AMOUNTS)
    buckets = DailyBuckets(stored)
    buckets.add("spend", ALL, MARCH_1, Decimal("2"))
    buckets.add("spend", ALL, MARCH_1, Decimal("-2"))  # nothing left on March 1
    buckets.add("spend", ALL, MARCH_3, Decimal("3"))
    buckets.store_changes()
    assert buckets.prune(before_day=MARCH_2) == 0
    again = DailyBuckets(stored)  # days held are known again after a load
    assert again.prune(before_day=MARCH_4) == 1
    assert again.as_dict() == {}
