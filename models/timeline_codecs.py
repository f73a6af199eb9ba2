"""What a :class:`models.timeline.BookTimeline` keeps per key, and how each is written.

Every value is immutable, and every codec writes compact JSON lists: money as the
decimal's own digits, days as ordinals, so a value read back equals the one put.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, NamedTuple

from models.book import BookedContract, BookEntry
from models.keyed import Codec, day_from_plain, day_plain, json_codec, money_plain

Span = tuple[int, int]  # day ordinals, first included, last excluded


class AccountBook(NamedTuple):
    """One account as the timeline keeps it.

    ``contract_ids`` and ``churn_days`` (its churns without a ``contract_id``) are
    sorted; ``active`` and ``churned`` are the spans of days counted for it in the
    active-account and churned-account sums: the days it is active, and the as-of days
    it counts as churned in the churn window."""

    contract_ids: tuple[str, ...] = ()
    churn_days: tuple[dt.date, ...] = ()
    active: tuple[Span, ...] = ()
    churned: tuple[Span, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.contract_ids or self.churn_days)


NO_ACCOUNT = AccountBook()


def _entry_plain(entry: BookEntry) -> list[Any]:
    c = entry.contract
    return [
        c.contract_id,
        c.account_id,
        c.kind,
        day_plain(c.start_date),
        c.term_months,
        money_plain(c.arr),
        day_plain(entry.end_date),
    ]


def _entry_from_plain(plain: list[Any]) -> BookEntry:
    contract_id, account_id, kind, start, term_months, arr, end = plain
    contract = BookedContract(
        contract_id, account_id, kind, day_from_plain(start), term_months, Decimal(arr)
    )
    return BookEntry(contract, day_from_plain(end))


def _spans_plain(spans: tuple[Span, ...]) -> list[int]:
    return [day for span in spans for day in span]


def _spans_from_plain(days: list[int]) -> tuple[Span, ...]:
    return tuple(zip(days[::2], days[1::2], strict=True))


def _account_plain(account: AccountBook) -> list[Any]:
    return [
        list(account.contract_ids),
        [day_plain(day) for day in account.churn_days],
        _spans_plain(account.active),
        _spans_plain(account.churned),
    ]


def _account_from_plain(plain: list[Any]) -> AccountBook:
    contract_ids, churn_days, active, churned = plain
    return AccountBook(
        tuple(contract_ids),
        tuple(day_from_plain(day) for day in churn_days),
        _spans_from_plain(active),
        _spans_from_plain(churned),
    )


ENTRY: Codec[BookEntry] = json_codec(_entry_plain, _entry_from_plain)
ACCOUNT: Codec[AccountBook] = json_codec(_account_plain, _account_from_plain)
DAY: Codec[dt.date] = json_codec(day_plain, day_from_plain)
