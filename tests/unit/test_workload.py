"""The benchmark history's event times: evenly spread, whatever the number of steps."""

from __future__ import annotations

import datetime as dt

from bench.workload import step_instant

START = dt.datetime(2023, 12, 2, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=3 * 365)


def test_steps_are_spread_as_a_timedelta_division_spreads_them() -> None:
    steps = 333_333
    for step in (0, 1, 7, 12_345, steps - 1):
        assert step_instant(START, SPAN, step, steps) == START + SPAN * step / steps


def test_millions_of_steps_do_not_overflow() -> None:
    steps = 1_818_182  # a 4,000,000-event history
    last = step_instant(START, SPAN, steps - 1, steps)
    assert START < last < START + SPAN
    assert last - step_instant(START, SPAN, steps - 2, steps) == SPAN / steps
