"""The contract book: activity by date, churn, ARR and its movements."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from models.book import (
    ArrMovements,
    BookedContract,
    BookEntry,
    Churn,
    active_accounts_on,
    arr_movements,
    arr_on,
    build_book,
    churned_accounts,
    end_date,
)
from models.windows import Window, rolling
from tests.unit.builders import booked

d = dt.date
D = Decimal
JAN_15 = d(2024, 1, 15)


def test_term_end_is_start_plus_term() -> None:
    assert booked().term_end == d(2025, 1, 15)
    assert booked(start=d(2024, 1, 31), term_months=1).term_end == d(2024, 2, 29)


@pytest.mark.parametrize(
    ("day", "arr", "active"),
    [
        (d(2024, 1, 14), D(0), 0),
        (d(2024, 1, 15), D(12000), 1),  # start_date <= t
        (d(2024, 7, 1), D(12000), 1),
        (d(2025, 1, 14), D(12000), 1),
        (d(2025, 1, 15), D(0), 0),  # t < start + term: the end day is out
    ],
)
def test_arr_over_a_term(day: dt.date, arr: Decimal, active: int) -> None:
    assert arr_on(build_book([booked()], []), day) == (arr, active)


CONTRACTS = [
    booked("C1", "A1", d(2024, 1, 15), 12, "12000"),
    booked("C2", "A1", d(2024, 3, 1), 24, "6000", kind="expansion"),
    booked("C3", "A2", d(2024, 2, 1), 12, "3000"),
]


@pytest.mark.parametrize(
    ("churns", "day", "arr", "active"),
    [
        ([], d(2024, 6, 1), D(21000), 3),
        # the whole account: every contract of A1 ends on the effective date
        ([Churn("A1", None, d(2024, 6, 1))], d(2024, 5, 31), D(21000), 3),
        ([Churn("A1", None, d(2024, 6, 1))], d(2024, 6, 1), D(3000), 1),
        # one contract only
        ([Churn("A1", "C2", d(2024, 6, 1))], d(2024, 6, 1), D(15000), 2),
        ([Churn("A1", "C2", d(2024, 6, 1))], d(2024, 5, 31), D(21000), 3),
        # another account's churn changes nothing for A1
        ([Churn("A2", None, d(2024, 6, 1))], d(2024, 6, 1), D(18000), 2),
        # a churn after the term end changes nothing
        ([Churn("A2", "C3", d(2025, 3, 1))], d(2025, 1, 31), D(9000), 2),
        # the earliest of several churns wins
        (
            [Churn("A1", None, d(2024, 9, 1)), Churn("A1", "C1", d(2024, 4, 1))],
            d(2024, 5, 1),
            D(9000),
            2,
        ),
    ],
)
def test_arr_with_churn(churns: list[Churn], day: dt.date, arr: Decimal, active: int) -> None:
    assert arr_on(build_book(CONTRACTS, churns), day) == (arr, active)


@pytest.mark.parametrize(
    ("churns", "expected_end", "churned"),
    [
        ([], d(2025, 1, 15), False),
        ([Churn("A1", None, d(2024, 6, 1))], d(2024, 6, 1), True),
        ([Churn("A1", "C1", d(2024, 6, 1))], d(2024, 6, 1), True),
        ([Churn("A1", "C9", d(2024, 6, 1))], d(2025, 1, 15), False),
        ([Churn("A2", None, d(2024, 6, 1))], d(2025, 1, 15), False),
        ([Churn("A1", None, d(2025, 1, 15))], d(2025, 1, 15), False),
        ([Churn("A1", None, d(2025, 6, 1))], d(2025, 1, 15), False),
        # an account that churned before this contract started came back: unaffected
        ([Churn("A1", None, d(2023, 12, 1))], d(2025, 1, 15), False),
        # this very contract cancelled before it started: never active
        ([Churn("A1", "C1", d(2023, 12, 1))], d(2024, 1, 15), True),
    ],
)
def test_end_date(churns: list[Churn], expected_end: dt.date, churned: bool) -> None:
    contract = booked()
    assert end_date(contract, churns) == expected_end
    assert BookEntry(contract, end_date(contract, churns)).churned is churned


def test_contract_cancelled_before_start_is_never_active() -> None:
    book = build_book([booked()], [Churn("A1", "C1", d(2023, 12, 1))])
    assert [arr_on(book, day) for day in (d(2024, 1, 15), d(2024, 6, 1))] == [(D(0), 0)] * 2


def test_future_start_is_contracted_arr() -> None:
    book = build_book([booked(start=d(2025, 1, 1), arr="24000")], [])
    assert arr_on(book, d(2024, 6, 1)) == (D(0), 0)
    assert arr_on(book, d(2025, 1, 1)) == (D(24000), 1)
    assert arr_on(book, d(2025, 12, 31)) == (D(24000), 1)
    assert arr_on(book, d(2026, 1, 1)) == (D(0), 0)


def test_active_accounts() -> None:
    book = build_book(CONTRACTS, [Churn("A1", None, d(2024, 6, 1))])
    assert active_accounts_on(book, d(2024, 3, 1)) == {"A1", "A2"}
    assert active_accounts_on(book, d(2024, 6, 1)) == {"A2"}
    assert active_accounts_on(book, d(2024, 1, 1)) == set()


Q1 = Window("quarter", d(2024, 1, 1), d(2024, 3, 31))

MOVEMENT_BOOK = [
    booked("N1", "A1", d(2024, 1, 15), 12, "12000"),
    booked("N2", "A2", d(2024, 3, 31), 12, "1000"),
    booked("N3", "A3", d(2024, 4, 1), 12, "500"),  # starts after the window
    booked("X1", "A1", d(2024, 2, 1), 12, "6000", kind="expansion"),
    booked("R1", "A4", d(2024, 2, 1), 12, "7000", kind="renewal"),
    booked("OLD", "A5", d(2023, 6, 1), 24, "5000"),
    booked("OLD2", "A6", d(2023, 6, 1), 24, "800"),
    booked("LATER", "A7", d(2024, 6, 1), 12, "900"),
]


@pytest.mark.parametrize(
    ("churns", "expected"),
    [
        ([], ArrMovements(D(13000), D(6000), D(0))),
        ([Churn("A5", None, d(2024, 3, 1))], ArrMovements(D(13000), D(6000), D(5000))),
        ([Churn("A5", "OLD", d(2024, 3, 31))], ArrMovements(D(13000), D(6000), D(5000))),
        ([Churn("A5", None, d(2024, 4, 1))], ArrMovements(D(13000), D(6000), D(0))),
        ([Churn("A5", None, d(2023, 12, 31))], ArrMovements(D(13000), D(6000), D(0))),
        (
            [Churn("A5", None, d(2024, 1, 10)), Churn("A6", None, d(2024, 2, 10))],
            ArrMovements(D(13000), D(6000), D(5800)),
        ),
        # cancelled before it started: it never counted, so no ARR is lost
        ([Churn("A7", "LATER", d(2024, 2, 1))], ArrMovements(D(13000), D(6000), D(0))),
        # a churn in the window of a contract that starts in it: both movements
        ([Churn("A1", "N1", d(2024, 3, 1))], ArrMovements(D(13000), D(6000), D(12000))),
    ],
)
def test_arr_movements(churns: list[Churn], expected: ArrMovements) -> None:
    assert arr_movements(build_book(MOVEMENT_BOOK, churns), Q1) == expected


@pytest.mark.parametrize(
    ("contracts", "churns", "expected"),
    [
        # churned the whole account in the window
        ([booked("C1", "A1", d(2023, 6, 1), 24)], [Churn("A1", None, d(2024, 6, 1))], {"A1"}),
        # churned one contract but still has another: not a lost customer
        (
            [booked("C1", "A1", d(2023, 6, 1), 24), booked("C2", "A1", d(2023, 6, 1), 36)],
            [Churn("A1", "C1", d(2024, 6, 1))],
            set(),
        ),
        # a term that simply ended is not churn
        ([booked("C1", "A1", d(2023, 6, 1), 12)], [], set()),
        # not active at the window's start: cannot be lost in it
        ([booked("C1", "A1", d(2024, 3, 1), 24)], [Churn("A1", None, d(2024, 6, 1))], set()),
        # churned before the window
        ([booked("C1", "A1", d(2022, 6, 1), 36)], [Churn("A1", None, d(2023, 12, 1))], set()),
    ],
)
def test_churned_accounts(
    contracts: list[BookedContract], churns: list[Churn], expected: set[str]
) -> None:
    year = rolling(d(2024, 12, 31), 365)  # 2024-01-02 .. 2024-12-31
    assert churned_accounts(build_book(contracts, churns), year) == expected


def test_build_book_keeps_order_and_matches_churns_by_id_and_account() -> None:
    book = build_book(
        CONTRACTS, [Churn("A1", "C2", d(2024, 6, 1)), Churn("A2", None, d(2024, 7, 1))]
    )
    assert [(e.contract.contract_id, e.end_date) for e in book] == [
        ("C1", d(2025, 1, 15)),
        ("C2", d(2024, 6, 1)),
        ("C3", d(2024, 7, 1)),
    ]
