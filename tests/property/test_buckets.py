"""Daily buckets against a plain sum: any window, after any adds, restatements and
prunes, sums to exactly what adding up its days one by one gives (a day before the
latest prune's limit is not kept)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.buckets import DailyBuckets, Segment
from models.windows import Window

EPOCH = dt.date(2024, 1, 1)
SEGMENTS: tuple[Segment, ...] = (("all", "all"), ("channel", "ads"))
days = st.integers(-40, 400).map(lambda n: EPOCH + dt.timedelta(days=n))
money = st.integers(-(10**12), 10**12).map(lambda units: Decimal(units).scaleb(-6))
# (what, metric, segment, day, amount, which): "add" uses metric to amount; "undo" restates
# the earlier add number ``which`` away; "prune" forgets the days before ``day``
Step = tuple[str, str, Segment, dt.date, Decimal, int]
step = st.tuples(
    st.sampled_from(("add", "add", "add", "undo", "prune")),
    st.sampled_from(("spend", "leads")),
    st.sampled_from(SEGMENTS),
    days,
    money,
    st.integers(0, 10**6),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=60), st.lists(st.tuples(days, days), min_size=1, max_size=8))
def test_a_window_sums_exactly_its_days(
    steps: list[Step], spans: list[tuple[dt.date, dt.date]]
) -> None:
    buckets = DailyBuckets()
    expected: dict[tuple[str, Segment, dt.date], Decimal] = {}
    added: list[tuple[str, Segment, dt.date, Decimal]] = []
    kept_from = dt.date.min  # the latest prune limit: a day before it is not kept
    for what, metric, segment, day, amount, which in steps:
        if what == "add" and day < kept_from:
            buckets.add(metric, segment, day, amount)  # past the retention: dropped
        elif what == "add":
            buckets.add(metric, segment, day, amount)
            key = (metric, segment, day)
            expected[key] = expected.get(key, Decimal(0)) + amount
            added.append((metric, segment, day, amount))
        elif what == "undo" and added:
            metric, segment, day, amount = added.pop(which % len(added))
            buckets.add(metric, segment, day, -amount)
            expected[(metric, segment, day)] -= amount
        elif what == "prune":
            buckets.prune(day)
            kept_from = max(kept_from, day)
            expected = {key: total for key, total in expected.items() if key[2] >= kept_from}
            added = [entry for entry in added if entry[2] >= kept_from]
        for a, b in spans:
            window = Window("w", min(a, b), max(a, b))
            for name in ("spend", "leads"):
                for part in SEGMENTS:
                    want = sum(
                        (
                            total
                            for (m, s, d), total in expected.items()
                            if (m, s) == (name, part) and window.first_day <= d <= window.last_day
                        ),
                        Decimal(0),
                    )
                    assert buckets.total(name, part, window) == want
