"""Window boundaries and month arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.windows import (
    Window,
    add_months,
    month_to_date,
    quarter_to_date,
    rolling,
    windows_ending,
)

d = dt.date


@pytest.mark.parametrize(
    ("last_day", "window_days", "first_day"),
    [
        (d(2024, 3, 31), 30, d(2024, 3, 2)),
        (d(2024, 3, 31), 1, d(2024, 3, 31)),
        (d(2024, 3, 1), 7, d(2024, 2, 24)),
        (d(2023, 3, 1), 7, d(2023, 2, 23)),
        (d(2024, 3, 31), 90, d(2024, 1, 2)),
        (d(2024, 12, 31), 365, d(2024, 1, 2)),  # leap year: 366 days
        (d(2023, 12, 31), 365, d(2023, 1, 1)),
        (d(2024, 1, 5), 30, d(2023, 12, 7)),
    ],
)
def test_rolling(last_day: dt.date, window_days: int, first_day: dt.date) -> None:
    window = rolling(last_day, window_days)
    assert window == Window(f"{window_days}d", first_day, last_day)
    assert (window.last_day - window.first_day).days + 1 == window_days


@pytest.mark.parametrize("window_days", [0, -7])
def test_rolling_needs_a_day(window_days: int) -> None:
    with pytest.raises(ValueError, match="window_days"):
        rolling(d(2024, 1, 1), window_days)


@pytest.mark.parametrize(
    ("last_day", "first_day"),
    [
        (d(2024, 2, 29), d(2024, 2, 1)),
        (d(2024, 3, 1), d(2024, 3, 1)),
        (d(2024, 12, 31), d(2024, 12, 1)),
    ],
)
def test_month_to_date(last_day: dt.date, first_day: dt.date) -> None:
    assert month_to_date(last_day) == Window("month", first_day, last_day)


@pytest.mark.parametrize(
    ("last_day", "first_day"),
    [
        (d(2024, 1, 1), d(2024, 1, 1)),
        (d(2024, 3, 31), d(2024, 1, 1)),
        (d(2024, 4, 1), d(2024, 4, 1)),
        (d(2024, 6, 30), d(2024, 4, 1)),
        (d(2024, 8, 15), d(2024, 7, 1)),
        (d(2024, 9, 30), d(2024, 7, 1)),
        (d(2024, 10, 1), d(2024, 10, 1)),
        (d(2024, 12, 31), d(2024, 10, 1)),
    ],
)
def test_quarter_to_date(last_day: dt.date, first_day: dt.date) -> None:
    assert quarter_to_date(last_day) == Window("quarter", first_day, last_day)


def test_windows_ending() -> None:
    windows = windows_ending(d(2024, 5, 15), (7, 30))
    assert [(w.name, w.first_day) for w in windows] == [
        ("7d", d(2024, 5, 9)),
        ("30d", d(2024, 4, 16)),
        ("month", d(2024, 5, 1)),
        ("quarter", d(2024, 4, 1)),
    ]
    assert {w.last_day for w in windows} == {d(2024, 5, 15)}


@pytest.mark.parametrize(
    ("day", "inside"),
    [
        (d(2024, 3, 1), False),
        (d(2024, 3, 2), True),
        (d(2024, 3, 15), True),
        (d(2024, 3, 31), True),
        (d(2024, 4, 1), False),
    ],
)
def test_window_contains_both_ends(day: dt.date, inside: bool) -> None:
    assert rolling(d(2024, 3, 31), 30).contains(day) is inside


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (d(2024, 1, 15), 0, d(2024, 1, 15)),
        (d(2024, 1, 15), 1, d(2024, 2, 15)),
        (d(2024, 1, 31), 1, d(2024, 2, 29)),  # leap year
        (d(2023, 1, 31), 1, d(2023, 2, 28)),
        (d(2024, 2, 29), 12, d(2025, 2, 28)),
        (d(2024, 2, 29), 48, d(2028, 2, 29)),
        (d(2024, 3, 31), 1, d(2024, 4, 30)),
        (d(2024, 5, 31), 1, d(2024, 6, 30)),
        (d(2024, 10, 31), 2, d(2024, 12, 31)),
        (d(2024, 11, 30), 1, d(2024, 12, 30)),
        (d(2024, 11, 30), 3, d(2025, 2, 28)),
        (d(2024, 12, 15), 1, d(2025, 1, 15)),
        (d(2024, 12, 31), 12, d(2025, 12, 31)),
        (d(2024, 1, 1), 36, d(2027, 1, 1)),
        (d(2024, 3, 31), -1, d(2024, 2, 29)),
        (d(2024, 1, 1), -1, d(2023, 12, 1)),
        (d(2024, 1, 31), -13, d(2022, 12, 31)),
        (d(2000, 1, 31), 1, d(2000, 2, 29)),  # divisible by 400: leap
        (d(2100, 1, 31), 1, d(2100, 2, 28)),  # divisible by 100: not leap
    ],
)
def test_add_months(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected


dates = st.dates(min_value=d(1900, 1, 1), max_value=d(2200, 12, 31))
month_steps = st.integers(min_value=-240, max_value=240)


@given(day=dates, months=month_steps)
def test_add_months_lands_in_the_right_month_never_later_in_it(day: dt.date, months: int) -> None:
    result = add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    assert result.day <= day.day
    if result.day < day.day:  # clamped: the result is the month's last day
        assert (result + dt.timedelta(days=1)).day == 1


@given(day=dates.filter(lambda x: x.day <= 28), a=month_steps, b=month_steps)
def test_add_months_composes_without_clamping(day: dt.date, a: int, b: int) -> None:
    assert add_months(add_months(day, a), b) == add_months(day, a + b)
