"""Day sums: a sum through a day, once read, is kept until a change on or before it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

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
