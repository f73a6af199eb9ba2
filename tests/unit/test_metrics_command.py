"""``revpulse metrics``: which windows, which days, and what it says when nothing matches."""

from __future__ import annotations

import argparse
import datetime as dt
from decimal import Decimal

import pytest

from models.series import MetricPoint
from streams.cli.metrics import (
    NOTHING_PUBLISHED,
    _metric_name,
    _reaches_before,
    first_kept_day,
    published_window_days,
    why_empty,
)

DAY = dt.date(2026, 3, 10)


def point(metric: str, window: str, value: Decimal | None = Decimal(1)) -> MetricPoint:
    return MetricPoint(metric, window, "all", "all", value, DAY)


def test_published_window_days_are_the_rolling_ones() -> None:
    points = [point("leads", w) for w in ("30d", "7d", "month", "quarter", "now", "400d")]
    assert published_window_days(points) == (7, 30, 400)


def test_first_kept_day_follows_the_workers_clock() -> None:
    assert first_kept_day({"clock": "2026-03-10T12:00:00+00:00"}, 10) == dt.date(2026, 2, 28)
    assert first_kept_day({}, 10) is None


@pytest.mark.parametrize(
    ("window", "as_of", "reaches"),
    [
        ("7d", dt.date(2026, 3, 7), False),  # starts on the first kept day
        ("7d", dt.date(2026, 3, 6), True),
        ("month", dt.date(2026, 3, 20), False),
        ("month", dt.date(2026, 2, 28), True),
        ("quarter", dt.date(2026, 4, 2), False),
        ("quarter", dt.date(2026, 3, 2), True),
        ("now", dt.date(2020, 1, 1), False),  # ARR comes from the contract book
    ],
)
def test_reaches_before_the_first_kept_day(window: str, as_of: dt.date, reaches: bool) -> None:
    assert _reaches_before(window, as_of, dt.date(2026, 3, 1)) is reaches


def test_a_misspelt_metric_is_refused_with_a_suggestion() -> None:
    assert _metric_name("arr") == "arr"
    with pytest.raises(argparse.ArgumentTypeError, match="did you mean 'conversion_rate'"):
        _metric_name("conversion_rat")


def test_why_empty_names_the_cause() -> None:
    published = [point("leads", "30d"), point("conversion_rate", "30d", None)]
    assert why_empty([], None, None, None) == NOTHING_PUBLISHED
    assert "no window '31d' is published; published windows: 30d" in why_empty(
        published, None, "31d", None
    )
    message = why_empty(published, "conversion_rate", "30d", dt.date(2026, 1, 1))
    assert message.startswith("conversion_rate over 30d is undefined on 2026-01-01")
