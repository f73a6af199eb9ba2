"""The codecs of what a book timeline keeps: every value reads back equal, digits and all."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.book import BookedContract, BookEntry
from models.keyed import Codec
from models.timeline_codecs import ACCOUNT, DAY, ENTRY, NO_ACCOUNT, AccountBook

FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2199, 12, 31)
ODD_IDS = ("Ünïcødé-合同-🚀", 'quote"d', "it's", "back\\slash", "", "a,b:[c]", "\ud800")


def _round_trip(codec: Codec[Any], value: Any) -> Any:
    data = codec.encode(value)
    assert isinstance(data, bytes)
    back = codec.decode(data)
    assert back == value
    assert type(back) is type(value)
    return back


def _entry(
    contract_id: str, arr: str, start: dt.date, end: dt.date, kind: str = "new"
) -> BookEntry:
    return BookEntry(
        BookedContract(contract_id, f"acct {contract_id}", kind, start, 12, Decimal(arr)), end
    )


@pytest.mark.parametrize(
    "entry",
    [
        _entry("C1", "1000000000000.000000", dt.date(2024, 1, 15), dt.date(2025, 1, 15)),
        _entry("C2", "-1000000000000.000001", FIRST_DAY, FIRST_DAY),  # negative, day one
        _entry("C3", "0.000001", LAST_DAY, LAST_DAY, kind="expansion"),
        _entry("C4", "0", dt.date(2024, 2, 29), dt.date(2024, 3, 1), kind="renewal"),
        _entry("C5", "-0", dt.date(2024, 2, 29), dt.date(2025, 2, 28)),
        _entry("C6", "1E+12", dt.date(2024, 1, 1), dt.date(2024, 6, 1)),
        *[_entry(odd, "12.50", dt.date(2024, 1, 1), dt.date(2024, 6, 1)) for odd in ODD_IDS],
    ],
    ids=lambda entry: repr(entry.contract.contract_id),
)
def test_a_book_entry_reads_back_with_its_digits_days_and_churned_flag(entry: BookEntry) -> None:
    back = _round_trip(ENTRY, entry)
    assert str(back.contract.arr) == str(entry.contract.arr)  # the exponent too
    assert back.churned == entry.churned
    assert back.contract.term_end == entry.contract.term_end


def test_a_book_entry_is_written_as_a_compact_list() -> None:
    entry = _entry("C1", "12000.50", dt.date(2024, 1, 15), dt.date(2024, 6, 1))
    start, end = dt.date(2024, 1, 15).toordinal(), dt.date(2024, 6, 1).toordinal()
    assert ENTRY.encode(entry) == (f'["C1","acct C1","new",{start},12,"12000.50",{end}]'.encode())


@pytest.mark.parametrize(
    "account",
    [
        NO_ACCOUNT,
        AccountBook(("C1",), (), ((738900, 739265),), ()),
        AccountBook(
            ("C1", "C2", *ODD_IDS),
            (FIRST_DAY, dt.date(2024, 6, 1), LAST_DAY),
            ((FIRST_DAY.toordinal(), 739000), (739100, LAST_DAY.toordinal())),
            ((739000, 739365),),
        ),
        AccountBook((), (dt.date(2024, 6, 1),), (), ()),  # churned before its contracts came
    ],
)
def test_an_account_reads_back_with_its_contracts_churn_days_and_spans(
    account: AccountBook,
) -> None:
    _round_trip(ACCOUNT, account)


def test_an_account_is_written_as_compact_lists() -> None:
    day = dt.date(2024, 6, 1)
    account = AccountBook(("C1", "C2"), (day,), ((10, 20), (30, 40)), ((25, 30),))
    assert (
        ACCOUNT.encode(account)
        == f'[["C1","C2"],[{day.toordinal()}],[10,20,30,40],[25,30]]'.encode()
    )


@pytest.mark.parametrize("day", [FIRST_DAY, LAST_DAY, dt.date(2024, 2, 29), dt.date(1, 1, 1)])
def test_a_day_reads_back(day: dt.date) -> None:
    assert DAY.encode(day) == str(day.toordinal()).encode()
    _round_trip(DAY, day)


_days = st.dates(FIRST_DAY, LAST_DAY)
_money = st.decimals(
    allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12
)
_spans = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6))).map(tuple)


@given(
    contract_id=st.text(),
    account_id=st.text(),
    kind=st.sampled_from(("new", "expansion", "renewal")),
    start=_days,
    term_months=st.integers(1, 1200),
    arr=_money,
    end=_days,
)
def test_any_book_entry_reads_back(
    contract_id: str,
    account_id: str,
    kind: str,
    start: dt.date,
    term_months: int,
    arr: Decimal,
    end: dt.date,
) -> None:
    entry = BookEntry(BookedContract(contract_id, account_id, kind, start, term_months, arr), end)
    back = _round_trip(ENTRY, entry)
    assert back.contract.arr.as_tuple() == arr.as_tuple()


@given(
    contract_ids=st.lists(st.text()).map(lambda ids: tuple(sorted(ids))),
    churn_days=st.lists(_days).map(lambda days: tuple(sorted(days))),
    active=_spans,
    churned=_spans,
)
def test_any_account_reads_back(
    contract_ids: tuple[str, ...],
    churn_days: tuple[dt.date, ...],
    active: tuple[tuple[int, int], ...],
    churned: tuple[tuple[int, int], ...],
) -> None:
    _round_trip(ACCOUNT, AccountBook(contract_ids, churn_days, active, churned))
