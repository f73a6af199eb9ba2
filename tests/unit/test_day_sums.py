"""Day sums: a sum through a day, once read, is kept, and moved by every change on or
before its day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.day_sums import count_sums, money_sums

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
    """Past the number of days kept, older sums are dropped and read from the tree again."""
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


class CountingNodes(dict[int, int]):
    """A tree's nodes that count the reads of them."""

    reads = 0

    def get(self, key: int, default: int | None = None) -> int | None:  # type: ignore[override]
        self.reads += 1
        return super().get(key, default)


def test_a_change_before_the_days_read_moves_their_sums_without_reading_the_tree() -> None:
    """A backfill of old days, between two publishes that read the same days."""
    sums = count_sums()
    for offset in range(0, 400, 7):
        sums.add(MARCH_1 + offset, 1)
    read_days = [MARCH_1 + 300, MARCH_1 + 370, MARCH_1 + 399]
    before = [sums.through(day) for day in read_days]
    nodes = CountingNodes(sums._nodes)
    sums._nodes = nodes
    sums.add(MARCH_1 + 3, 10)  # before every day read
    sums.add(MARCH_1 + 350, 100)  # between them
    assert sums.node_count  # folds the changes into the tree
    folded = nodes.reads
    after = [sums.through(day) for day in read_days]
    assert after == [before[0] + 10, before[1] + 110, before[2] + 110]
    assert nodes.reads == folded  # no sum read from the tree again
