"""The line revpulse dev prints: headline figures for all segments, from published points."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from models.series import MetricPoint
from streams.dev_status import status_line

TODAY = dt.date(2026, 11, 25)


def point(metric: str, window: str, value: str | None, origin: str = "all") -> MetricPoint:
    amount = None if value is None else Decimal(value)
    return MetricPoint(metric, window, origin, "all", amount, TODAY)


def test_headline_figures_for_all_segments_in_order() -> None:
    points = [
        point("arr", "point", "547407083"),
        point("new_acv", "30d", "1045405.925781"),
        point("new_acv", "30d", "5", origin="marketing"),  # a segment: not on the line
        point("new_acv", "7d", "7"),  # another window: not on the line
        point("conversion_rate", "30d", "0.300117"),
        point("cac", "30d", "35522.375156"),
        point("marketing_acv", "30d", None),
    ]
    line = status_line(points, {"band": "strong"}, "USD")
    assert line == (
        "new ACV 30d 1,045,405.93 | marketing ACV 30d undefined | conversion 30d 30.0 % | "
        "CAC 30d 35,522.38 | ARR 547,407,083 (USD) | band strong"
    )


def test_before_the_first_publish() -> None:
    assert status_line([], {}, "USD") == "no metrics published yet"
