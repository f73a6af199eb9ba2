"""Day sums: a sum through a day, once read, is kept, and moved by every change on or
before its day."""

from __future__ import annotations

import datetime as dt
from collections.abc import ItemsView
from decimal import Decimal
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.day_sums import count_sums, money_sums
from models.keyed import MONEY as MONEY_CODEC
from models.keyed import MemoryMaps
from models.money import MONEY_CONTEXT, money_sum

T = TypeVar("T", int, Decimal)

MARCH_1 = dt.date(2026, 3, 1).toordinal()


@pytest.mark.parametrize(
    ("change_day", "through_day_1", "through_day_5", "through_day_9"),
    [
        (0, 11, 11, 11),  # on the day read: every sum through it or later changes
        (-1, 11, 11, 11),  # before it: the same
        (3, 1, 11, 11),  # between: only the later sums change
        (5, 1, 11, 11),  # on the later day read
        (6, 1, 1, 11),  # after both days read
        (9, 1, 1, 11),
        (10, 1, 1, 1),  # after every day read: no sum read changes
    ],
)
def test_a_change_shows_in_every_sum_through_its_day_or_later(
    change_day: int, through_day_1: int, through_day_5: int, through_day_9: int
) -> None:
    sums = count_sums()
    sums.add(MARCH_1 + 1, 1)
    assert [sums.through(MARCH_1 + d) for d in (1, 5, 9)] == [1, 1, 1]  # read: kept
    sums.add(MARCH_1 + change_day, 10)
    found = [sums.through(MARCH_1 + d) for d in (1, 5, 9)]
    assert found == [through_day_1, through_day_5, through_day_9]


def test_a_change_that_nets_to_nothing_leaves_the_sums() -> None:
    sums = money_sums()
    sums.add(MARCH_1, Decimal("2.50"))
    assert sums.through(MARCH_1 + 30) == Decimal("2.50")
    sums.add(MARCH_1 + 3, Decimal("1"))
    sums.add(MARCH_1 + 3, Decimal("-1"))
    assert sums.through(MARCH_1 + 30) == Decimal("2.50")
    assert sums.between(MARCH_1 + 1, MARCH_1 + 30) == Decimal(0)


def test_many_days_read_still_give_exact_sums() -> None:
    """Past the number of days kept, older sums are dropped and read afresh."""
    sums = count_sums()
    for offset in range(100):
        sums.add(MARCH_1 + offset, offset)
    for _ in range(2):
        assert [sums.through(MARCH_1 + d) for d in range(100)] == [
            d * (d + 1) // 2 for d in range(100)
        ]
    sums.add(MARCH_1 + 50, 1000)
    assert sums.through(MARCH_1 + 49) == 49 * 50 // 2
    assert sums.through(MARCH_1 + 50) == 50 * 51 // 2 + 1000


# an add (day, amount) or a read (day, None), on days within a few weeks
STEPS = st.lists(
    st.tuples(st.integers(0, 40), st.one_of(st.none(), st.integers(-5, 5))), max_size=80
)


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_sums_read_between_changes_equal_the_plain_sums(
    steps: list[tuple[int, int | None]],
) -> None:
    sums = count_sums()
    amounts: dict[int, int] = {}
    for day, amount in steps:
        if amount is None:
            expected = sum(a for d, a in amounts.items() if d <= day)
            assert sums.through(MARCH_1 + day) == expected
        else:
            sums.add(MARCH_1 + day, amount)
            amounts[day] = amounts.get(day, 0) + amount
    for day in range(42):  # and every sum at the end, kept or read afresh
        assert sums.through(MARCH_1 + day) == sum(a for d, a in amounts.items() if d <= day)


class CountingReads(dict[int, T]):
    """Day amounts or block sums that count the reads of them."""

    reads = 0

    def get(self, key: int, default: T | None = None) -> T | None:  # type: ignore[override]
        self.reads += 1
        return super().get(key, default)

    def items(self) -> ItemsView[int, T]:  # type: ignore[override]
        self.reads += 1
        return super().items()


def test_a_change_before_the_days_read_moves_their_sums_without_reading_the_amounts() -> None:
    """A backfill of old days, between two publishes that read the same days."""
    sums = count_sums()
    for offset in range(0, 400, 7):
        sums.add(MARCH_1 + offset, 1)
    read_days = [MARCH_1 + 300, MARCH_1 + 370, MARCH_1 + 399]
    before = [sums.through(day) for day in read_days]
    amounts, blocks = CountingReads(sums._amounts), CountingReads(sums._blocks)
    sums._amounts, sums._blocks = amounts, blocks
    sums.add(MARCH_1 + 3, 10)  # before every day read
    sums.add(MARCH_1 + 350, 100)  # between them
    assert sums.entry_count  # folds the changes in
    folded = (amounts.reads, blocks.reads)
    after = [sums.through(day) for day in read_days]
    assert after == [before[0] + 10, before[1] + 110, before[2] + 110]
    assert (amounts.reads, blocks.reads) == folded  # no sum read afresh
    assert sums.through(MARCH_1 + 372) == before[1] + 111  # a day not read before: read
    assert amounts.reads > folded[0] and blocks.reads > folded[1]


# money amounts: past the default context's 28 digits (sums are exact in MONEY_CONTEXT),
# and a few that net out on a day, a block or everywhere
MONEY = st.one_of(
    st.sampled_from([Decimal("2.50"), Decimal("-2.50"), Decimal("0.000001")]),
    st.decimals(min_value=-(10**33), max_value=10**33, places=6),
)
# days over several blocks, before MARCH_1 and far past it; a read (day, None)
MONEY_STEPS = st.lists(st.tuples(st.integers(-70, 260), st.one_of(st.none(), MONEY)), max_size=120)


def _plain_through(amounts: dict[int, Decimal], day: int) -> Decimal:
    return money_sum(a for d, a in amounts.items() if d <= day)


@settings(max_examples=300, deadline=None)
@given(MONEY_STEPS, st.lists(st.integers(-70, 260), min_size=1, max_size=40))
def test_money_sums_over_many_blocks_equal_the_plain_sums(
    steps: list[tuple[int, Decimal | None]], late_reads: list[int]
) -> None:
    sums = money_sums()
    amounts: dict[int, Decimal] = {}
    for day, amount in steps:
        if amount is None:
            assert sums.through(MARCH_1 + day) == _plain_through(amounts, day)
        else:
            sums.add(MARCH_1 + day, amount)
            amounts[day] = MONEY_CONTEXT.add(amounts.get(day, Decimal(0)), amount)
    # days read for the first time after the changes (afresh), then each read again
    for day in late_reads + late_reads:
        assert sums.through(MARCH_1 + day) == _plain_through(amounts, day)
        first, last = sorted((day, late_reads[0]))
        assert sums.between(MARCH_1 + first, MARCH_1 + last) == money_sum(
            a for d, a in amounts.items() if first <= d <= last
        )
    everything = money_sum(amounts.values())
    assert sums.through(dt.date(1, 1, 1).toordinal()) == 0
    assert sums.through(dt.date(9999, 12, 31).toordinal()) == everything
    assert sums.entry_count <= 2 * sum(1 for a in amounts.values() if a)
    for day, amount in amounts.items():  # take every amount back: nothing is held
        sums.add(MARCH_1 + day, MONEY_CONTEXT.minus(amount))  # -amount: 28 digits
    assert sums.entry_count == 0
    assert sums.through(MARCH_1 + 260) == 0


@settings(max_examples=200, deadline=None)
@given(MONEY_STEPS)
def test_sums_made_again_from_their_stored_map_give_the_same_sums(
    steps: list[tuple[int, Decimal | None]],
) -> None:
    stored = MemoryMaps(encoded=True).open("sums", MONEY_CODEC)
    sums = money_sums(stored)
    amounts: dict[int, Decimal] = {}
    for day, amount in steps:
        if amount is None:
            sums.through(MARCH_1 + day)  # folds the changes so far in
        else:
            sums.add(MARCH_1 + day, amount)
            amounts[day] = MONEY_CONTEXT.add(amounts.get(day, Decimal(0)), amount)
    assert dict(stored.items()) == {
        str(MARCH_1 + day): amount for day, amount in amounts.items() if amount
    }
    again = money_sums(stored)
    assert again.entry_count == sums.entry_count
    for day in range(-71, 262):
        assert again.through(MARCH_1 + day) == sums.through(MARCH_1 + day)
    again.add(MARCH_1 + 5, Decimal("1.25"))  # and it goes on from them
    assert again.through(MARCH_1 + 260) == MONEY_CONTEXT.add(
        _plain_through(amounts, 260), Decimal("1.25")
    )
