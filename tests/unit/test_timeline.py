"""The book timeline: day sums, spans of days, and the book's answers kept incrementally."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from models.book import ArrMovements, BookedContract, Churn, build_book, summarize
from models.day_sums import DaySums
from models.timeline import BookTimeline, _difference, _intersection, _merged
from models.windows import Window, rolling
from tests.unit.builders import booked

d = dt.date
D = Decimal
JAN_15 = d(2024, 1, 15)


def _o(day: dt.date) -> int:
    return day.toordinal()


def test_day_sums_add_up_over_ranges_and_drop_zero_entries() -> None:
    sums = DaySums(D(0), lambda a, b: a + b, lambda a, b: a - b)
    sums.add(_o(d(2024, 1, 10)), D("5.5"))
    sums.add(_o(d(2024, 3, 1)), D("2"))
    assert sums.through(_o(d(2024, 1, 9))) == 0
    assert sums.through(_o(d(2024, 1, 10))) == D("5.5")
    assert sums.through(_o(d(2199, 12, 31))) == D("7.5")
    assert sums.between(_o(d(2024, 1, 11)), _o(d(2024, 3, 1))) == D("2")
    # days before and after the timeline's range: nothing, and everything
    assert sums.through(_o(d(1, 1, 1))) == 0
    assert sums.through(_o(d(9999, 12, 31))) == D("7.5")
    sums.add(_o(d(2024, 1, 10)), D("-5.5"))
    sums.add(_o(d(2024, 3, 1)), D("-2"))
    assert sums.entry_count == 0


def test_day_sums_refuse_a_day_outside_their_range() -> None:
    sums = DaySums(0, int.__add__, int.__sub__)
    with pytest.raises(ValueError, match="between 1800-01-01 and"):
        sums.add(_o(d(1799, 12, 31)), 1)
    with pytest.raises(ValueError, match="between 1800-01-01 and"):
        sums.add(_o(d(2600, 1, 1)), 1)


def test_spans_merge_intersect_and_subtract() -> None:
    assert _merged([(5, 8), (1, 3), (3, 4), (7, 10), (6, 6)]) == [(1, 4), (5, 10)]
    assert _intersection([(1, 4), (5, 10)], [(3, 6), (8, 20)]) == [(3, 4), (5, 6), (8, 10)]
    assert _difference([(1, 10), (12, 15)], [(0, 2), (4, 5), (9, 13)]) == [
        (2, 4),
        (5, 9),
        (13, 15),
    ]
    assert _difference([(1, 3)], []) == [(1, 3)]


def _year(as_of: dt.date) -> Window:
    return rolling(as_of, 365)


def _assert_as_scan(
    timeline: BookTimeline, contracts: list[BookedContract], churns: list[Churn], as_of: dt.date
) -> None:
    windows = [Window("q", as_of - dt.timedelta(days=90), as_of)]
    want = summarize(build_book(contracts, churns), as_of, windows, _year(as_of))
    assert timeline.summary(as_of, windows, _year(as_of)) == want


def test_arr_contracts_and_accounts_on_a_day() -> None:
    timeline = BookTimeline()
    timeline.put_contract(booked("C1", "A1", d(2024, 1, 15), 12, "12000"))
    timeline.put_contract(booked("C2", "A1", d(2024, 3, 1), 24, "6000", kind="expansion"))
    timeline.put_contract(booked("C3", "A2", d(2024, 2, 1), 12, "3000"))
    summary = timeline.summary(d(2024, 6, 1), [], _year(d(2024, 6, 1)))
    assert (summary.arr, summary.active_contracts, summary.active_accounts) == (D(21000), 3, 2)
    summary = timeline.summary(d(2025, 1, 15), [], _year(d(2025, 1, 15)))  # C1's end day
    assert (summary.arr, summary.active_contracts, summary.active_accounts) == (D(9000), 2, 2)


def test_an_earlier_churn_of_a_contract_arriving_later_wins() -> None:
    contract = booked("C1", "A1", d(2024, 1, 15), 12)
    churns = [Churn("A1", "C1", d(2024, 9, 1)), Churn("A1", "C1", d(2024, 4, 1))]
    timeline = BookTimeline()
    timeline.put_contract(contract)
    for churn in churns:
        timeline.add_churn(churn)
    assert timeline.end_date(contract) == d(2024, 4, 1)
    _assert_as_scan(timeline, [contract], churns, d(2024, 5, 1))


def test_a_churn_before_the_contract_arrives_applies_to_it() -> None:
    timeline = BookTimeline()
    timeline.add_churn(Churn("A1", None, d(2024, 6, 1)))
    timeline.add_churn(Churn("A9", "C2", d(2024, 2, 1)))  # by contract id, any account
    c1, c2 = booked("C1", "A1"), booked("C2", "A1", d(2024, 3, 1))
    timeline.put_contract(c1)
    timeline.put_contract(c2)
    assert timeline.end_date(c1) == d(2024, 6, 1)
    assert timeline.end_date(c2) == d(2024, 3, 1)  # cancelled before it started
    assert [e.churned for e in timeline.entries()] == [True, True]
    summary = timeline.summary(d(2024, 12, 31), [_year(d(2024, 12, 31))], _year(d(2024, 12, 31)))
    # the cancelled contract never counted, so only C1's ARR is lost
    assert summary.movements["365d"] == ArrMovements(D(24000), D(0), D(12000))


def test_a_replaced_contract_moves_to_its_new_account() -> None:
    timeline = BookTimeline()
    timeline.put_contract(booked("C1", "A1", d(2023, 6, 1), 24))
    timeline.add_churn(Churn("A1", None, d(2024, 6, 1)))
    as_of = d(2024, 12, 31)
    assert timeline.summary(as_of, [], _year(as_of)).churned_accounts == 1
    moved = booked("C1", "A2", d(2023, 6, 1), 24)
    timeline.put_contract(moved)  # the account churn of A1 no longer applies
    summary = timeline.summary(as_of, [], _year(as_of))
    assert (summary.churned_accounts, summary.active_accounts) == (0, 1)
    _assert_as_scan(timeline, [moved], [Churn("A1", None, d(2024, 6, 1))], as_of)
    timeline.remove_contract("C1")
    assert timeline.entries() == []
    assert timeline.size == 0


@pytest.mark.parametrize(
    ("contracts", "churns", "expected"),
    [
        # churned the whole account in the window
        ([booked("C1", "A1", d(2023, 6, 1), 24)], [Churn("A1", None, d(2024, 6, 1))], 1),
        # churned one contract but still has another: not a lost customer
        (
            [booked("C1", "A1", d(2023, 6, 1), 24), booked("C2", "A1", d(2023, 6, 1), 36)],
            [Churn("A1", "C1", d(2024, 6, 1))],
            0,
        ),
        # a term that simply ended is not churn
        ([booked("C1", "A1", d(2023, 6, 1), 12)], [], 0),
        # not active at the window's start: cannot be lost in it
        ([booked("C1", "A1", d(2024, 3, 1), 24)], [Churn("A1", None, d(2024, 6, 1))], 0),
        # churned before the window
        ([booked("C1", "A1", d(2022, 6, 1), 36)], [Churn("A1", None, d(2023, 12, 1))], 0),
        # a gap: active at the start, churned, back, then its term ended in the window
        (
            [booked("C1", "A1", d(2023, 6, 1), 24), booked("C2", "A1", d(2024, 8, 1), 3)],
            [Churn("A1", "C1", d(2024, 6, 1))],
            1,
        ),
    ],
)
def test_churned_accounts(
    contracts: list[BookedContract], churns: list[Churn], expected: int
) -> None:
    timeline = BookTimeline()
    for contract in contracts:
        timeline.put_contract(contract)
    for churn in churns:
        timeline.add_churn(churn)
    as_of = d(2024, 12, 31)
    assert timeline.summary(as_of, [], _year(as_of)).churned_accounts == expected
    _assert_as_scan(timeline, contracts, churns, as_of)


def test_the_churn_window_must_end_on_the_day_and_span_the_configured_days() -> None:
    timeline = BookTimeline()
    with pytest.raises(ValueError, match="365 days ending on 2024-12-31"):
        timeline.summary(d(2024, 12, 31), [], rolling(d(2024, 12, 30), 365))
    with pytest.raises(ValueError, match="365 days ending"):
        timeline.summary(d(2024, 12, 31), [], rolling(d(2024, 12, 31), 90))
    short = BookTimeline(churn_window_days=90)
    short.put_contract(booked("C1", "A1", d(2024, 1, 15), 12))
    short.add_churn(Churn("A1", None, d(2024, 12, 1)))
    assert short.summary(d(2024, 12, 31), [], rolling(d(2024, 12, 31), 90)).churned_accounts == 1
