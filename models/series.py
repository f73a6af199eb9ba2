"""From a metrics source (the ledger, or a stored copy) to metric points as of one day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from models.buckets import ALL, Segment
from models.money import MONEY_CONTEXT, MONTHS_PER_YEAR
from models.ratios import ratio
from models.state import MetricsSource
from models.windows import Window, rolling, windows_ending

POINT_WINDOW = "point"
_ONE_DAY = dt.timedelta(days=1)
# customer churn rate: accounts lost over this many days ending on the as-of day
CHURN_WINDOW_DAYS = 365


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One published value. ``value`` is None when a ratio's denominator is 0.

    With slots: a publish makes every point anew, and one with no ``__dict__`` is about
    half the cost to make."""

    metric: str
    window: str
    origin: str
    channel: str
    value: Decimal | None
    as_of: dt.date
    numerator: Decimal | None = None
    denominator: Decimal | None = None

    @property
    def series_id(self) -> str:
        return f"{self.metric}|{self.window}|{self.origin}|{self.channel}"


def _labels(segment: Segment) -> tuple[str, str]:
    dim, value = segment
    if dim == "origin":
        return value, "all"
    if dim == "channel":
        return "all", value
    return "all", "all"


class _Builder:
    """Points for one as-of day. A bucket's sum through a day is read once per publish:
    every window ends on the as-of day, and several metrics read the same window sum."""

    def __init__(self, ledger: MetricsSource, as_of: dt.date) -> None:
        self.ledger = ledger
        self.as_of = as_of
        self.points: list[MetricPoint] = []
        self._through: dict[tuple[str, Segment, dt.date], Decimal] = {}
        self._segments: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Segment]] = {}

    def segments(self, *metrics: str, dims: tuple[str, ...]) -> list[Segment]:
        """The segments any of ``metrics`` has, within ``dims``, and ALL: the same for
        every window, so looked up once."""
        key = (metrics, dims)
        found = self._segments.get(key)
        if found is None:
            found = self._segments[key] = _segments(self.ledger, *metrics, dims=dims)
        return found

    def through(self, metric: str, segment: Segment, day: dt.date) -> Decimal:
        key = (metric, segment, day)
        found = self._through.get(key)
        if found is None:
            found = self._through[key] = self.ledger.buckets.through(metric, segment, day)
        return found

    def total(self, metric: str, segment: Segment, window: Window) -> Decimal:
        """What ``buckets.total`` gives: the sum through the last day less the sum
        through the day before the first."""
        return MONEY_CONTEXT.subtract(
            self.through(metric, segment, window.last_day),
            self.through(metric, segment, window.first_day - _ONE_DAY),
        )

    def plain(self, metric: str, window: str, segment: Segment, value: Decimal) -> None:
        origin, channel = _labels(segment)
        self.points.append(MetricPoint(metric, window, origin, channel, value, self.as_of))

    def quotient(
        self, metric: str, window: str, segment: Segment, numerator: Decimal, denominator: Decimal
    ) -> None:
        origin, channel = _labels(segment)
        value = ratio(numerator, denominator)
        self.points.append(
            MetricPoint(metric, window, origin, channel, value, self.as_of, numerator, denominator)
        )


def _segments(ledger: MetricsSource, *metrics: str, dims: tuple[str, ...]) -> list[Segment]:
    found: set[Segment] = {ALL}
    for metric in metrics:
        found |= {seg for seg in ledger.buckets.segments(metric) if seg[0] in dims}
    return sorted(found)


def _window_points(b: _Builder, window: Window) -> None:
    both = ("origin", "channel")
    for seg in b.segments("leads", "conversions", "bookings", dims=both):
        leads = b.total("leads", seg, window)
        conversions = b.total("conversions", seg, window)
        bookings = b.total("bookings", seg, window)
        new_customers = b.total("new_customers", seg, window)
        b.plain("leads", window.name, seg, leads)
        b.plain("conversions", window.name, seg, conversions)
        b.plain("lead_value", window.name, seg, b.total("lead_value", seg, window))
        b.quotient("conversion_rate", window.name, seg, conversions, leads)
        b.plain("bookings", window.name, seg, bookings)
        b.plain("bookings_tcv", window.name, seg, b.total("bookings_tcv", seg, window))
        b.quotient("bookings_acv", window.name, seg, b.total("bookings_acv", seg, window), bookings)
        b.plain("new_customers", window.name, seg, new_customers)
        b.quotient("new_acv", window.name, seg, b.total("new_acv", seg, window), new_customers)
    marketing: Segment = ("origin", "marketing")
    marketing_acv = b.total("new_acv", marketing, window)
    b.quotient(
        "marketing_acv",
        window.name,
        ALL,
        marketing_acv,
        b.total("new_customers", marketing, window),
    )
    b.quotient(
        "marketing_acv_per_lead",
        window.name,
        ALL,
        marketing_acv,
        b.total("leads", marketing, window),
    )
    for seg in b.segments("spend", "new_customers", dims=("channel",)):
        spend = b.total("spend", seg, window)
        new_acv = b.total("new_acv", seg, window)
        b.plain("spend", window.name, seg, spend)
        b.quotient("cac", window.name, seg, spend, b.total("new_customers", seg, window))
        b.quotient("roas", window.name, seg, new_acv, spend)
        payback_numerator = MONEY_CONTEXT.multiply(spend, MONTHS_PER_YEAR)
        b.quotient("cac_payback_months", window.name, seg, payback_numerator, new_acv)


def _book_points(b: _Builder, windows: list[Window]) -> None:
    year = rolling(b.as_of, CHURN_WINDOW_DAYS)
    book = b.ledger.book_summary(b.as_of, windows, year)
    for window in windows:
        moves = book.movements[window.name]
        b.plain("arr_new", window.name, ALL, moves.new)
        b.plain("arr_expansion", window.name, ALL, moves.expansion)
        b.plain("arr_churned", window.name, ALL, moves.churned)
    b.plain("arr", POINT_WINDOW, ALL, book.arr)
    b.plain("active_contracts", POINT_WINDOW, ALL, Decimal(book.active_contracts))
    b.plain("active_customers", POINT_WINDOW, ALL, Decimal(book.active_accounts))
    b.quotient("book_acv", POINT_WINDOW, ALL, book.arr, Decimal(book.active_contracts))
    churned = Decimal(book.churned_accounts)
    active_before = Decimal(book.accounts_at_start)
    churn_rate = ratio(churned, active_before)
    b.quotient("customer_churn_rate", POINT_WINDOW, ALL, churned, active_before)
    mean_new_acv = ratio(b.total("new_acv", ALL, year), b.total("new_customers", ALL, year))
    if churn_rate is None or mean_new_acv is None:
        b.quotient("ltv", POINT_WINDOW, ALL, Decimal(0), Decimal(0))
    else:
        b.quotient("ltv", POINT_WINDOW, ALL, mean_new_acv, churn_rate)


def compute_points(ledger: MetricsSource, as_of: dt.date) -> list[MetricPoint]:
    """Every metric point for windows ending on ``as_of`` and the book on that day."""
    builder = _Builder(ledger, as_of)
    windows = windows_ending(as_of, ledger.policy.window_days)
    for window in windows:
        _window_points(builder, window)
    _book_points(builder, windows)
    return builder.points


def iter_defined(points: list[MetricPoint]) -> Iterator[MetricPoint]:
    return (point for point in points if point.value is not None)
