"""Window boundaries: plain functions of the day a window ends on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """A span of whole UTC days, both ends included."""

    name: str
    first_day: dt.date
    last_day: dt.date

    def contains(self, day: dt.date) -> bool:
        return self.first_day <= day <= self.last_day


def rolling(last_day: dt.date, window_days: int) -> Window:
    """The ``window_days`` days ending with ``last_day``."""
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    return Window(f"{window_days}d", last_day - dt.timedelta(days=window_days - 1), last_day)


def month_to_date(last_day: dt.date) -> Window:
    return Window("month", last_day.replace(day=1), last_day)


def quarter_to_date(last_day: dt.date) -> Window:
    first_month = 3 * ((last_day.month - 1) // 3) + 1
    return Window("quarter", dt.date(last_day.year, first_month, 1), last_day)


def windows_ending(last_day: dt.date, window_days: tuple[int, ...]) -> list[Window]:
    """Every window the metrics are reported over, ending on ``last_day``."""
    return [rolling(last_day, days) for days in window_days] + [
        month_to_date(last_day),
        quarter_to_date(last_day),
    ]


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` later, clamped to the month's end."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last_of_month = (next_month - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last_of_month))
